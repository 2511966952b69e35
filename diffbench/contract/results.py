"""The results contract: JSON Lines, one `run` line then one `generation` line per generation.

Writing is append-only and flushed per line, so a crash loses nothing already measured.
Loading accepts any number of files and folders, from any hosts and dates.
"""

from __future__ import annotations

import json
import os
import stat
import statistics
from array import array
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import pydantic_core

from .. import SCHEMA_VERSION
from .files import FileError, describe_os_error, kind_of, lock_exclusively, open_regular, replace_whole
from .records import MAX_LINE_BYTES, MEASURED_FIELDS, STATUSES, LineError, generation_record, upgrade, validate_line

__all__ = ["MEASURED_FIELDS", "STATUSES", "Results", "ResultsError", "ResultsWriter", "generation_record",
           "load_results", "read_records", "results_files"]



class ResultsError(FileError):
    """A results file that cannot be read or written: one line for the user."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def fitting_name(folder: Path, stem: str, suffix: str, reserve: int = len(".images")) -> str:
    """`stem + suffix`, with the stem cut so that the name and its images folder fit the file system."""
    limit = _name_max(folder) - len(suffix.encode()) - reserve
    encoded = stem.encode()
    if len(encoded) > limit:
        stem = encoded[:limit].decode(errors="ignore")
    return stem + suffix


class ContractBreach(ResultsError):
    """A line diffbench itself made that breaks the results contract: refused before it reaches the file."""


class ResultsWriter:
    """Appends lines to one results file; each line is flushed and synced as it is written.

    A new file is created exclusively (two runs never share one), and an exclusive lock is held
    on the file for as long as the writer is open, so that two `run --resume` of one file cannot
    interleave. `append=True` continues an existing file (resume).
    """

    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = path.open("a" if append else "x", encoding="utf-8")
        except FileExistsError:
            raise ResultsError(f"{path}: already exists; results files are never overwritten "
                               "(use --resume to continue it)") from None
        except OSError as exc:
            raise ResultsError(f"{path}: cannot create the results file: {describe_os_error(exc)}") from None
        try:
            lock_exclusively(self._file, path)
        except FileError as exc:
            raise ResultsError(str(exc)) from None
        self.images_dir = path.with_name(path.stem + ".images")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        try:  # checked as it is written, as it will be when read: a file never holds a line it would refuse
            validate_line(record, text.encode("utf-8"))
        except LineError as exc:
            raise ContractBreach(f"{self.path}: diffbench made a line its own contract refuses ({exc}); nothing "
                                 "was written for it (a bug: please report it with this message)") from None
        start = os.fstat(self._file.fileno()).st_size  # the file ends with a whole line here
        try:
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            self._cut_back(start)
            raise ResultsWriteError(self.path, exc, self.lines) from None
        self.lines += 1

    def _cut_back(self, size: int) -> None:
        """A line that could not be written whole (a full disk) is taken out again, so that the file
        ends with the last whole line, as the error says. The buffer still holds the rest of it, and
        closing tries to write that: so the file is closed first, then cut, and locked again."""
        try:
            self._file.close()
        except OSError:
            pass
        try:
            self._file = self.path.open("a", encoding="utf-8")
            os.ftruncate(self._file.fileno(), size)
            lock_exclusively(self._file, self.path)
        except (OSError, FileError):
            pass

    def save_image(self, cell_id: str, png: bytes, suffix: str = ".png") -> str | None:
        """Store a cell's thumbnail (or, with suffix ".full.png", its full picture) next to the
        results; returns its path relative to the results file.

        Images are a convenience: one that cannot be written is left out (None), never the results.
        """
        try:
            self.images_dir.mkdir(parents=True, exist_ok=True)
            target = self.images_dir / f"{cell_id}{suffix}"
            replace_whole(target, lambda path: path.write_bytes(png))  # never a torn thumbnail
        except OSError:
            return None
        return f"{self.images_dir.name}/{target.name}"

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # every line was already flushed and synced


class ResultsWriteError(ResultsError):
    """Writing a results line failed (disk full, read-only, permissions): what was kept is on disk."""

    def __init__(self, path: Path, exc: OSError, kept_lines: int) -> None:
        self.path, self.kept_lines = path, kept_lines
        super().__init__(f"{path}: cannot write results: {describe_os_error(exc)}; the {kept_lines} lines written "
                         "before are kept")


def results_files(paths: list[str | Path], notes: list[str] | None = None) -> list[Path]:
    """Results files named directly or found (recursively) in folders, in a stable order.

    In a folder, only regular `*.jsonl` files are taken; links that lead outside the folder,
    FIFOs and devices are passed over (with a note). The same file reached twice (named twice,
    or through a link) is read once.
    """
    notes = notes if notes is not None else []
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()

    def take(path: Path) -> None:
        info = path.stat()
        key = (info.st_dev, info.st_ino)
        if key in seen:
            notes.append(f"{path}: the same file as one already read; read once")
            return
        seen.add(key)
        found.append(path)

    for item in map(Path, paths):
        if item.is_dir():
            root = item.resolve()
            for folder, dirs, files in os.walk(item, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    if not name.endswith(".jsonl"):
                        continue
                    path = Path(folder) / name
                    try:
                        real = path.resolve(strict=True)
                        mode = real.stat().st_mode
                    except (OSError, RuntimeError):
                        notes.append(f"{path}: a broken link; passed over")
                        continue
                    if root not in real.parents:
                        notes.append(f"{path}: links outside {item}; passed over")
                    elif not stat.S_ISREG(mode):
                        notes.append(f"{path}: {kind_of(mode)}; passed over")
                    else:
                        take(path)
        elif item.exists():
            take(item)  # named directly: read_records refuses it if it is not a regular file
        else:
            raise ResultsError(f"{item}: no such file or folder")
    return found


@dataclass
class ReadReport:
    """What reading files passed over: bad lines (with --skip-bad-lines), notes."""

    bad_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _lines(handle: IO[bytes]) -> Any:
    """(number, bytes or None if longer than MAX_LINE_BYTES, complete) for each line, in bounded memory."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            while line and not line.endswith(b"\n"):
                line = handle.readline(MAX_LINE_BYTES)
            yield number, None, True
            continue
        yield number, line, line.endswith(b"\n")


def _parse_line(raw: bytes) -> Any:
    """One JSON line. pydantic-core's parser is about 4x faster than the json module on results
    lines; where it refuses something the json module accepts (a lone surrogate escape in a
    prompt), the json module decides, so what parses and what is an error does not change."""
    try:
        return pydantic_core.from_json(raw)
    except ValueError:
        return json.loads(raw)


def _open_results(path: Path) -> IO[bytes]:
    """A results file opened as files.open_regular opens it; what refuses it is a ResultsError."""
    try:
        return open_regular(path)
    except FileError as exc:
        raise ResultsError(str(exc)) from None


def read_records(path: Path, skip_bad: bool = False, report: ReadReport | None = None) -> list[dict[str, Any]]:
    """Every record of one file, each validated against the results contract.

    A torn last line (power cut, kill -9) is passed over with a note. A bad line is a
    ResultsError naming file:line and the field, unless `skip_bad`, which counts it in `report`.
    A file written by a newer schema is refused before anything else is read.
    """
    report = report if report is not None else ReadReport()
    records: list[dict[str, Any]] = []
    version = SCHEMA_VERSION
    with _open_results(path) as handle:
        for number, raw, complete in _lines(handle):
            where = f"{path}:{number}"
            if raw is None:
                problem = f"{where}: line longer than {MAX_LINE_BYTES // 2**20} MiB; not a results line"
            elif not raw.strip():
                continue
            else:
                try:
                    record = _parse_line(raw)
                except (ValueError, RecursionError):
                    if not complete:
                        report.notes.append(f"{where}: incomplete last line passed over (the run was interrupted)")
                        continue
                    problem = f"{where}: not a results line (invalid JSON)"
                else:
                    try:
                        validate_line(record, raw)
                    except LineError as exc:
                        problem = f"{where}: {exc}"
                    else:
                        if record["type"] == "run":
                            version = record["schema_version"]
                            if version > SCHEMA_VERSION:
                                raise ResultsError(
                                    f"{where}: written by a newer diffbench (schema {version}; this one reads up to "
                                    f"{SCHEMA_VERSION}); upgrade diffbench to read it")
                        records.append(upgrade(record, version))
                        continue
            if not skip_bad:
                raise ResultsError(problem + " (--skip-bad-lines reads the rest)")
            report.bad_lines.append(problem)
    return records


def newest_schema(path: Path) -> int:
    """The highest schema_version of the run lines in a file, read without validating the rest."""
    highest = 0
    with _open_results(path) as handle:
        for _, raw, _complete in _lines(handle):
            if raw and b'"run"' in raw:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue
                version = record.get("schema_version") if isinstance(record, dict) else None
                if record.get("type") == "run" and isinstance(version, int) and not isinstance(version, bool):
                    highest = max(highest, version)
    return highest


def repair_torn_tail(path: Path) -> str | None:
    """Make an interrupted file appendable: a last line without its newline gets one if it is a
    complete record, and is cut if it does not parse. Returns a note saying what was done."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        handle.seek(max(0, size - MAX_LINE_BYTES - 1))
        tail = handle.read()
    if tail.endswith(b"\n"):
        return None
    start = tail.rfind(b"\n") + 1
    last = tail[start:]
    try:
        json.loads(last)
        parses = True
    except ValueError:
        parses = False
    with path.open("r+b") as handle:
        if parses:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
            return f"{path}: the last line lacked its newline; added"
        handle.truncate(size - len(last))
    return f"{path}: incomplete last line removed before resuming (the run was interrupted)"


def check_output(output: str | Path, inputs: list[str | Path]) -> None:
    """Refuse an output path that is one of the results files being read (it would be overwritten)."""
    target = Path(output)
    if not target.exists():
        return
    for path in results_files(list(inputs)):
        try:
            if os.path.samefile(target, path):
                raise ResultsError(f"{output}: is one of the results files being read; choose another output "
                                   "(results are never overwritten)")
        except OSError:
            continue


@dataclass
class Results:
    """Results as pandas DataFrames: one row per run, per generation, per denoising step."""

    runs: Any
    generations: Any
    steps: Any
    warnings: Any = None  # the warning lines stored during the runs
    bad_lines: list[str] = field(default_factory=list)  # passed over with --skip-bad-lines
    notes: list[str] = field(default_factory=list)  # links, duplicates, torn tails: what was passed over
    quality: Any = None  # quality lines (CLIP scores): one row per cell, host and checkpoint


def load_results(paths: list[str | Path], skip_bad_lines: bool = False) -> Results:
    """Load any number of results files and folders into DataFrames.

    generations: one row per generation with the cell's settings flattened in (model,
    sampler, steps, ...), the run's host and GPU, phases as phase_* columns.
    steps: one row per denoiser evaluation (run_id, cell_id, repeat, warmup, step, seconds).
    The same measurement met twice (a file and its copy) is counted once, with a note.
    """
    import pandas as pd

    read = ReadReport()
    runs: list[dict[str, Any]] = []
    generations = _Columns()
    # The per-step frame is built from flat arrays (one entry per generation, repeated over its
    # steps), not one dict per step: a fleet's results hold millions of steps.
    step_values = array("d")  # 8 bytes a step, not a Python float's 32
    step_owner: list[tuple[Any, ...]] = []
    step_counts: list[int] = []
    stored_warnings: list[dict[str, Any]] = []
    scores: dict[tuple[Any, ...], dict[str, Any]] = {}  # (run, cell, checkpoint) -> the last score met
    seen_runs: set[str] = set()
    seen: dict[tuple[Any, ...], str] = {}
    duplicates: dict[tuple[str, str], int] = {}
    for path in results_files(paths, read.notes):
        run_info: dict[str, dict[str, Any]] = {}
        for record in read_records(path, skip_bad_lines, read):
            if record["type"] == "run":
                host = record["host"]
                gpus = host.get("gpus") or []
                run_row = {"run_id": record["run_id"], "file": str(path), "started_at": record.get("started_at"),
                           "suite": record["suite"].get("name"), "suite_sha256": record["suite"].get("sha256"),
                           "quality_reference": _reference_text((record.get("settings") or {}).get("quality_reference")),
                           "hostname": host.get("hostname"), "cpu": host.get("cpu"),
                           "gpu_names": ", ".join(g.get("name") or "" for g in gpus),
                           **{f"sw_{k}": v for k, v in (record.get("software") or {}).items()}}
                run_info[record["run_id"]] = run_row
                if record["run_id"] not in seen_runs:
                    seen_runs.add(record["run_id"])
                    runs.append(run_row)
            elif record["type"] == "quality":
                hostname = run_info.get(record["run_id"], {}).get("hostname")
                scores[(record["run_id"], record["cell_id"], record["checkpoint"])] = {
                    "run_id": record["run_id"], "cell_id": record["cell_id"], "hostname": hostname,
                    "metric": record["metric"], "value": record["value"], "checkpoint": record["checkpoint"]}
            elif record["type"] == "warning":
                stored_warnings.append({**record, "hostname": run_info.get(record["run_id"], {}).get("hostname")})
            elif record["type"] == "generation":
                key = (record["run_id"], record["cell_id"], record["repeat"], record["warmup"], record["status"],
                       record.get("wall_s"))
                if key in seen:
                    pair = (str(path), seen[key])
                    duplicates[pair] = duplicates.get(pair, 0) + 1
                    continue
                seen[key] = str(path)
                run_row = run_info.get(record["run_id"], {})
                generations.append(generation_row(record, run_row, str(path)))
                step_s = record["step_s"]
                if step_s:
                    step_values.extend(step_s)
                    step_counts.append(len(step_s))
                    step_owner.append((record["run_id"], run_row.get("hostname"), record["cell_id"],
                                       record["repeat"], record["warmup"]))
    for (path_text, first), count in duplicates.items():
        where = "earlier in the same file" if path_text == first else f"in {first}"
        read.notes.append(f"{path_text}: {count} generation(s) already read {where} (same run, cell, repeat and "
                          "measurement); counted once")
    return Results(pd.DataFrame(runs), generations.frame(), _steps_frame(step_values, step_owner, step_counts),
                   pd.DataFrame(stored_warnings), read.bad_lines, read.notes,
                   pd.DataFrame(list(scores.values()),
                                columns=["run_id", "cell_id", "hostname", "metric", "value", "checkpoint"]))


class _Columns:
    """Rows gathered column by column. A fleet's 100,000 generations held as one dict each cost
    more memory than the frame built from them; lists per column cost a pointer per value. The
    frame is the one a list of those dicts gives: a column a row lacks holds NaN there."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {}
        self.count = 0
        self._keys: tuple[str, ...] = ()  # the previous row's keys, in order, and their columns
        self._lists: list[list[Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        keys = tuple(row)
        if keys == self._keys and len(keys) == len(self.columns):
            # the common case, a row with the same keys as the one before: one append per column in C
            deque(map(list.append, self._lists, row.values()), maxlen=0)
            self.count += 1
            return
        self._append_new_shape(row)
        self._keys, self._lists = keys, [self.columns[key] for key in keys]

    def _append_new_shape(self, row: dict[str, Any]) -> None:
        columns = self.columns
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [float("nan")] * self.count
            column.append(value)
        self.count += 1
        if len(row) != len(columns):  # this row lacks a column others have
            for column in columns.values():
                if len(column) < self.count:
                    column.append(float("nan"))

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.columns)


def generation_row(record: dict[str, Any], run_row: dict[str, Any], file: str) -> dict[str, Any]:
    """A generation line as one flat row of the generations frame: the cell's settings, runtime_*,
    phase_* and telemetry_* columns, the run's host, and the step series reduced to its sum and
    median (the per-step values go to the steps frame)."""
    row = {k: v for k, v in record.items()
           if k not in {"cell", "phases_s", "step_s", "runtime", "type", "telemetry", "traceback"}}
    row.update(record["cell"])
    row.update({f"runtime_{k}": v for k, v in (record.get("runtime") or {}).items()})
    row.update({f"phase_{k}": v for k, v in (record.get("phases_s") or {}).items()})
    row.update({f"telemetry_{k}": v for k, v in (record.get("telemetry") or {}).items() if k != "trace"})
    row["hostname"] = run_row.get("hostname")
    row["host_cpu"] = run_row.get("cpu")
    row["quality_reference"] = run_row.get("quality_reference")
    row["file"] = file
    step_s = record.get("step_s") or []
    row["step_s_sum"] = float(sum(step_s)) if step_s else None
    row["step_s_median"] = float(statistics.median(step_s)) if step_s else None
    return row


def _reference_text(reference: Any) -> str | None:
    """A suite's quality reference as one comparable text ('sampler=euler,steps=50'), or None."""
    if not isinstance(reference, dict) or not reference:
        return None
    return ",".join(f"{k}={reference[k]}" for k in sorted(reference))


def _steps_frame(values: array[float], owners: list[tuple[Any, ...]], counts: list[int]) -> Any:
    """One row per step. The texts (run, host, cell) are categorical: a fleet's millions of steps
    share a few hundred of each, and a text per row cost more memory than the whole rest of
    the load (group such a column with observed=True)."""
    import numpy as np
    import pandas as pd

    columns = ["run_id", "hostname", "cell_id", "repeat", "warmup", "step", "seconds"]
    if not values:
        return pd.DataFrame(columns=columns)
    generation = np.repeat(np.arange(len(counts)), counts)  # the generation each step belongs to
    owner = list(zip(*owners))
    frame: dict[str, Any] = {}
    for i, name in enumerate(columns[:3]):
        texts = pd.Categorical(owner[i])
        frame[name] = pd.Categorical.from_codes(texts.codes[generation], categories=texts.categories)
    frame["repeat"] = np.asarray(owner[3], dtype=np.int64)[generation]
    frame["warmup"] = np.asarray(owner[4], dtype=bool)[generation]
    starts = np.repeat(np.cumsum([0, *counts[:-1]]), counts)
    frame["step"] = np.arange(len(values)) - starts
    frame["seconds"] = np.frombuffer(values, dtype=float)  # holds the array: no copy
    return pd.DataFrame(frame, columns=columns)
