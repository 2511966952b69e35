"""The results contract: JSON Lines, one `run` line then one `generation` line per generation.

Writing is append-only and flushed per line, so a crash loses nothing already measured.
Loading accepts any number of files and folders, from any hosts and dates.
"""

from __future__ import annotations

import json
import os
import statistics
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from . import SCHEMA_VERSION

STATUSES = ("ok", "oom", "crashed", "timeout", "error", "not_applicable")
MEASURED_FIELDS: dict[str, Any] = {
    "wall_s": None, "timed_s": None,
    "phases_s": None, "step_s": [], "evaluations": 0, "denoiser_calls": 0,
    "peak_vram_allocated_bytes": None, "peak_vram_reserved_bytes": None, "peak_vram_device_bytes": None,
    "peak_host_rss_bytes": None, "host_rss_peak_exact": None, "energy_j": None, "avg_power_w": None,
    "telemetry": None,
}


def generation_record(cell_id: str, cell: dict[str, Any], repeat: int, warmup: bool, status: str,
                      error: str | None = None, **measured: Any) -> dict[str, Any]:
    """A complete generation line; fields not measured stay null (results are never invented)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    record: dict[str, Any] = {"type": "generation", "cell_id": cell_id, "cell": cell, "repeat": repeat,
                              "warmup": warmup, "status": status, "error": error}
    record.update(MEASURED_FIELDS)
    record["step_s"] = []
    record.update(measured)
    return record


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()


class ResultsWriter:
    """Appends lines to one results file; each line is flushed and synced as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self.images_dir = path.with_suffix("").with_name(path.stem + ".images")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def save_image(self, cell_id: str, png: bytes) -> str:
        """Store a cell's thumbnail next to the results; returns its path relative to the results file."""
        self.images_dir.mkdir(parents=True, exist_ok=True)
        target = self.images_dir / f"{cell_id}.png"
        target.write_bytes(png)
        return f"{self.images_dir.name}/{target.name}"

    def close(self) -> None:
        self._file.close()


class ResultsError(Exception):
    """A results file that cannot be read: one line for the user."""


def _upgrade(record: dict[str, Any], version: int, where: str) -> dict[str, Any]:
    """Bring an older record to the current schema (none yet: version 1 is the first)."""
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{where}: written by a newer diffbench (schema {version}; this one reads up to "
                           f"{SCHEMA_VERSION}); upgrade diffbench to read it")
    return record


def results_files(paths: list[str | Path]) -> list[Path]:
    """Results files named directly or found (recursively) in folders, in a stable order."""
    found: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found += sorted(item.rglob("*.jsonl"))
        elif item.is_file():
            found.append(item)
        else:
            raise ResultsError(f"{item}: no such file or folder")
    return found


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of one file; a torn last line (power cut, kill -9) is skipped with a warning."""
    records: list[dict[str, Any]] = []
    version = SCHEMA_VERSION
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            if number == len(lines):
                warnings.warn(f"{path}:{number}: incomplete last line skipped (the run was interrupted)",
                              stacklevel=2)
                continue
            raise ResultsError(f"{path}:{number}: not a results line (invalid JSON)") from None
        if record.get("type") == "run":
            version = int(record.get("schema_version", 1))
        records.append(_upgrade(record, version, f"{path}:{number}"))
    return records


def repair_torn_tail(path: Path) -> bool:
    """Cut an incomplete last line (left by a power cut or kill -9) so appending can go on.

    Returns True when something was cut; warns with the file and line.
    """
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    line = data[:cut].count(b"\n") + 1
    warnings.warn(f"{path}:{line}: incomplete last line removed before resuming (the run was interrupted)",
                  stacklevel=2)
    with path.open("r+b") as handle:
        handle.truncate(cut)
    return True


@dataclass
class Results:
    """Results as pandas DataFrames: one row per run, per generation, per denoising step."""

    runs: Any
    generations: Any
    steps: Any
    warnings: Any = None  # the warning lines stored during the runs


def load_results(paths: list[str | Path]) -> Results:
    """Load any number of results files and folders into DataFrames.

    generations: one row per generation with the cell's settings flattened in (model,
    sampler, steps, ...), the run's host and GPU, phases as phase_* columns.
    steps: one row per denoiser evaluation (run_id, cell_id, repeat, warmup, step, seconds).
    """
    import pandas as pd

    runs: list[dict[str, Any]] = []
    generations: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    stored_warnings: list[dict[str, Any]] = []
    for path in results_files(paths):
        run_info: dict[str, dict[str, Any]] = {}
        for record in read_records(path):
            if record.get("type") == "run":
                host = record.get("host") or {}
                gpus = host.get("gpus") or []
                run_row = {"run_id": record["run_id"], "file": str(path), "started_at": record.get("started_at"),
                           "suite": (record.get("suite") or {}).get("name"),
                           "suite_sha256": (record.get("suite") or {}).get("sha256"),
                           "hostname": host.get("hostname"), "cpu": host.get("cpu"),
                           "gpu_names": ", ".join(g.get("name", "") for g in gpus),
                           **{f"sw_{k}": v for k, v in (record.get("software") or {}).items()}}
                runs.append(run_row)
                run_info[record["run_id"]] = run_row
            elif record.get("type") == "warning":
                stored_warnings.append({**record, "hostname": run_info.get(record.get("run_id", ""), {}).get("hostname")})
            elif record.get("type") == "generation":
                run_row = run_info.get(record.get("run_id", ""), {})
                row = {k: v for k, v in record.items()
                       if k not in {"cell", "phases_s", "step_s", "runtime", "type", "telemetry", "traceback"}}
                row.update(record.get("cell") or {})
                row.update({f"runtime_{k}": v for k, v in (record.get("runtime") or {}).items()})
                row.update({f"phase_{k}": v for k, v in (record.get("phases_s") or {}).items()})
                row.update({f"telemetry_{k}": v for k, v in (record.get("telemetry") or {}).items() if k != "trace"})
                row["hostname"] = run_row.get("hostname")
                row["host_cpu"] = run_row.get("cpu")
                row["file"] = str(path)
                step_s = record.get("step_s") or []
                row["step_s_sum"] = float(sum(step_s)) if step_s else None
                row["step_s_median"] = float(statistics.median(step_s)) if step_s else None
                generations.append(row)
                for index, seconds in enumerate(record.get("step_s") or []):
                    steps.append({"run_id": record.get("run_id"), "hostname": run_row.get("hostname"),
                                  "cell_id": record["cell_id"],
                                  "repeat": record["repeat"], "warmup": record["warmup"],
                                  "step": index, "seconds": seconds})
    return Results(pd.DataFrame(runs), pd.DataFrame(generations), pd.DataFrame(steps), pd.DataFrame(stored_warnings))
