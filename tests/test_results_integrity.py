"""Results files as a hostile or clumsy user would hand them over: every malformed line is one
error naming file:line and the field (or is read correctly), nothing hangs, nothing outside the
results folder reaches a report, no input is ever overwritten, nothing is counted twice."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffbench.analysis.costmodel import estimate
from diffbench.analysis.tables import with_metrics
from diffbench.cli import main
from diffbench.contract.files import safe_image
from diffbench.contract.records import cell_settings, generation_record, run_record
from diffbench.contract.results import (
    ResultsError,
    ResultsWriteError,
    ResultsWriter,
    check_output,
    load_results,
    read_records,
)

RUN = run_record("r1", "box", [{"name": "NVIDIA GeForce RTX 4090"}], {"name": "s", "path": "s.yaml", "sha256": "a" * 64})


def _generation(repeat: int = 0, **changes: Any) -> dict[str, Any]:
    record = generation_record("c1", cell_settings(model="m", steps=2, sampler="euler", resolution="64x64",
                                                   prompt="a fox", seed=0), repeat, False, "ok",
                               wall_s=1.0 + repeat / 10, step_s=[0.4, 0.5], evaluations=2,
                               phases_s={"text_encode": 0.05, "denoise": 0.9, "decode": 0.05, "other": 0.0})
    record["run_id"] = "r1"
    record.update(changes)
    return record


def _write(path: Path, lines: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _good_file(path: Path, n: int = 3) -> Path:
    return _write(path, [RUN, *(_generation(i) for i in range(n))])


def _mutate(record: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    target = out
    *parents, last = dotted.split(".")
    for part in parents:
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return out


DELETE = object()
# (field, bad value, what the error must name): plausible mistakes in a generation line
BAD_GENERATIONS = [
    ("wall_s", "1.5", "wall_s"), ("wall_s", -5.0, "wall_s"), ("wall_s", 0.0, "wall_s"), ("wall_s", True, "wall_s"),
    ("wall_s", [1.0], "wall_s"), ("wall_s", {"s": 1}, "wall_s"), ("status", DELETE, "status"),
    ("status", "fine", "status"), ("status", None, "status"), ("status", 1, "status"), ("run_id", DELETE, "run_id"),
    ("run_id", 5, "run_id"), ("run_id", "", "run_id"), ("repeat", DELETE, "repeat"), ("repeat", "0", "repeat"),
    ("repeat", -1, "repeat"), ("repeat", 1.5, "repeat"), ("repeat", 10**40, "repeat"), ("warmup", "false", "warmup"),
    ("warmup", 0, "warmup"), ("step_s", {"a": 1}, "step_s"), ("step_s", "0.1,0.2", "step_s"),
    ("step_s", [0.4, "x"], "step_s[1]"), ("step_s", [0.4, -0.5], "step_s[1]"), ("step_s", [0.4, None], "step_s[1]"),
    ("evaluations", 3, "evaluations"), ("evaluations", "2", "evaluations"), ("phases_s", [0.1], "phases_s"),
    ("phases_s", {"denoise": "fast"}, "phases_s.denoise"), ("phases_s", {"denoise": -1.0}, "phases_s.denoise"),
    ("cell", DELETE, "cell"), ("cell", "m", "cell"), ("cell", [], "cell"), ("cell.steps", "eight", "cell.steps"),
    ("cell.steps", 0, "cell.steps"), ("cell.steps", DELETE, "cell.steps"), ("cell.model", None, "cell.model"),
    ("cell.model", {"name": "m"}, "cell.model"), ("cell.resolution", 512, "cell.resolution"),
    ("cell.batch_size", 0, "cell.batch_size"), ("cell.guidance_scale", "high", "cell.guidance_scale"),
    ("cell.seed", "42", "cell.seed"), ("cell.prompt", ["a", "b"], "cell.prompt"),
    ("peak_vram_allocated_bytes", -1, "peak_vram_allocated_bytes"),
    ("peak_vram_allocated_bytes", 10**30, "peak_vram_allocated_bytes"),
    ("peak_host_rss_bytes", "4GB", "peak_host_rss_bytes"), ("energy_j", -3.0, "energy_j"),
    ("avg_power_w", "300W", "avg_power_w"), ("telemetry", [1, 2], "telemetry"), ("runtime", "cuda", "runtime"),
    ("image", 5, "image"), ("error", {"e": 1}, "error"), ("cell_id", None, "cell_id"), ("cell_id", ["c"], "cell_id"),
    ("type", "generations", "type"), ("type", None, "type"),
]
BAD_RUNS = [
    ("schema_version", None, "schema_version"), ("schema_version", "one", "schema_version"),
    ("schema_version", 1.0, "schema_version"), ("schema_version", 0, "schema_version"),
    ("schema_version", True, "schema_version"), ("run_id", DELETE, "run_id"), ("host", "box", "host"),
    ("host.hostname", DELETE, "host.hostname"), ("host.gpus", {"name": "x"}, "host.gpus"),
    ("host.gpus", ["RTX 4090"], "host.gpus[0]"), ("host.ram_bytes", "24GB", "host.ram_bytes"),
    ("suite", "s", "suite"), ("suite.name", 3, "suite.name"), ("software", [], "software"),
]
COMMANDS = [["report", "-o", "{out}/r.html"], ["compare", "--by", "steps"], ["export"], ["estimate", "--steps", "4"],
            ["recommend"]]


def _cli(args: list[str]) -> Any:
    return CliRunner().invoke(main, args, catch_exceptions=True)


def _assert_one_line_error(result: Any, where: str, field: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {where}") and f"'{field}'" in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("field", "value", "named"), BAD_GENERATIONS, ids=lambda v: str(v)[:20])
def test_a_bad_generation_line_is_one_error_naming_file_line_and_field(tmp_path: Path, field: str, value: Any,
                                                                       named: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [RUN, _generation(0), _mutate(_generation(1), field, value)])
    _assert_one_line_error(_cli(["report", str(path), "-o", str(tmp_path / "r.html")]), f"{path}:3:", named)


@pytest.mark.parametrize(("field", "value", "named"), BAD_RUNS, ids=lambda v: str(v)[:20])
def test_a_bad_run_line_is_one_error_naming_file_line_and_field(tmp_path: Path, field: str, value: Any,
                                                                named: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [_mutate(RUN, field, value), _generation(0)])
    _assert_one_line_error(_cli(["report", str(path), "-o", str(tmp_path / "r.html")]), f"{path}:1:", named)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_reading_command_refuses_a_bad_line_in_one_line(tmp_path: Path, command: list[str]) -> None:
    path = _write(tmp_path / "bad.jsonl", [RUN, _generation(0), _mutate(_generation(1), "wall_s", "slow")])
    args = [command[0], str(path), *(a.format(out=tmp_path) for a in command[1:])]
    _assert_one_line_error(_cli(args), f"{path}:3:", "wall_s")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_skip_bad_lines_reads_the_rest_and_says_how_many(tmp_path: Path, command: list[str]) -> None:
    lines = [RUN, *(_generation(i) for i in range(4)), _mutate(_generation(5), "status", "fine"), "[1, 2]"]
    path = _write(tmp_path / "some-bad.jsonl", lines)
    args = [command[0], str(path), *(a.format(out=tmp_path) for a in command[1:]), "--skip-bad-lines"]
    result = CliRunner().invoke(main, args)
    assert "2 bad line(s) passed over" in result.output
    assert "Traceback" not in result.output
    assert load_results([path], skip_bad_lines=True).generations.shape[0] == 4


def test_non_objects_and_invalid_json_in_the_middle_are_line_errors(tmp_path: Path) -> None:
    for junk in ("[1, 2, 3]", "42", '"text"', "null", "not json", '{"type": "run"'):
        path = _write(tmp_path / "junk.jsonl", [RUN, junk, _generation(0)])
        with pytest.raises(ResultsError, match=r"junk\.jsonl:2: "):
            read_records(path)


def test_deeply_nested_json_is_a_line_error_not_a_crash(tmp_path: Path) -> None:
    path = _write(tmp_path / "deep.jsonl", [RUN, "[" * 100_000 + "]" * 100_000, _generation(0)])
    with pytest.raises(ResultsError, match=r"deep\.jsonl:2: "):
        read_records(path)


def test_an_overlong_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    huge = _generation(0)
    huge["cell"]["prompt"] = "x" * (9 * 2**20)
    path = _write(tmp_path / "huge.jsonl", [RUN, huge, _generation(1)])
    with pytest.raises(ResultsError, match=r"huge\.jsonl:2: line longer than 8 MiB"):
        read_records(path)
    assert len(load_results([path], skip_bad_lines=True).generations) == 1


def test_a_huge_step_list_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "steps.jsonl", [RUN, _generation(0, step_s=[0.001] * 200_000, evaluations=200_000)])
    with pytest.raises(ResultsError, match=r"steps\.jsonl:2: field 'step_s'"):
        read_records(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["wall_s", "status", "repeat", "warmup", "step_s", "evaluations", "cell", "phases_s",
                              "run_id", "cell_id", "peak_vram_device_bytes", "energy_j", "image", "runtime", "type"]),
       value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=4), max_leaves=10))
def test_any_value_in_any_field_is_read_or_refused_in_one_line(tmp_path: Path, field: str, value: Any) -> None:
    record = _generation(0)
    record[field] = value
    try:
        text = json.dumps(record, allow_nan=True)
    except ValueError:
        return
    path = tmp_path / "prop.jsonl"
    path.write_text(json.dumps(RUN) + "\n" + text + "\n")
    try:
        results = load_results([path])
    except ResultsError as exc:
        message = str(exc)
        assert message.startswith(f"{path}:2: ") and "\n" not in message
        return
    frame = with_metrics(results.generations)  # what was accepted must be usable downstream
    assert len(frame) == 1


@pytest.mark.parametrize("name", ["\n", "a\rb", "\x1b]52;c;aGk=\x07", "\u2028", "\x85"])
def test_a_control_character_in_a_key_is_shown_escaped_on_one_line(tmp_path: Path, name: str) -> None:
    """The case hypothesis found on another machine: a key "\\n" inside phases_s made a two-line
    message. Every name a user wrote reaches a message escaped (errors.one_line)."""
    record = _generation(0)
    record["phases_s"] = {name: "slow"}
    path = tmp_path / "keys.jsonl"
    path.write_text(json.dumps(RUN) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ResultsError) as caught:
        load_results([path])
    message = str(caught.value)
    assert message.startswith(f"{path}:2: field 'phases_s.") and message.isprintable()
    assert repr(name)[1:-1] in message


def test_schema_command_prints_the_results_schema() -> None:
    result = _cli(["schema", "--results"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "GenerationLine" in json.dumps(schema) and "step_s" in json.dumps(schema)


# --- files that are not what they claim -----------------------------------------------------------

def test_a_fifo_named_directly_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "results.jsonl"
    os.mkfifo(fifo)
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            read_records(fifo)
        except ResultsError as exc:
            result["error"] = str(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "a FIFO; only regular files are read" in result["error"]


def test_devices_and_fifos_in_a_folder_are_passed_over(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    _good_file(folder / "good.jsonl")
    os.mkfifo(folder / "pipe.jsonl")
    (folder / "zero.jsonl").symlink_to("/dev/zero")
    (folder / "outside.jsonl").symlink_to(_good_file(tmp_path / "elsewhere" / "other.jsonl"))
    results = load_results([folder])
    assert len(results.generations) == 3
    notes = "\n".join(results.notes)
    assert "pipe.jsonl: a FIFO; passed over" in notes
    assert "zero.jsonl: links outside" in notes and "outside.jsonl: links outside" in notes


def test_dev_zero_named_directly_is_refused() -> None:
    with pytest.raises(ResultsError, match="a character device"):
        read_records(Path("/dev/zero"))


# --- images: only the file's own thumbnails -------------------------------------------------------

def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x7f" * 3 * width for _ in range(min(height, 4)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("image", ["/SECRET", "../secret.png", "r.images/../secret.png", "r.images/../../secret.png",
                                   "other.images/secret.png", "r.images/link.png", "r.images/notpng.png",
                                   "r.images/bomb.png", "r.images/fifo.png", "r.images"])
def test_a_report_embeds_no_file_but_the_results_own_thumbnails(tmp_path: Path, image: str) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png(8, 8) + b"SECRET-KEY-MATERIAL")
    folder = tmp_path / "results"
    images = folder / "r.images"
    images.mkdir(parents=True)
    (images / "link.png").symlink_to(secret)
    (images / "notpng.png").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    (images / "bomb.png").write_bytes(_png(100_000, 100_000))
    os.mkfifo(images / "fifo.png")
    (tmp_path / "other.images").mkdir()
    shutil.copy(secret, tmp_path / "other.images" / "secret.png")
    image = image.replace("/SECRET", str(secret))
    path = _write(folder / "r.jsonl", [RUN, _generation(0, image=image)])
    assert safe_image(path, image) is None
    out = tmp_path / "report.html"
    result = _cli(["report", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert base64.b64encode(secret.read_bytes()[:30]).decode()[:32] not in html
    assert base64.b64encode(b"-----BEGIN OPENSSH").decode()[:20] not in html


def test_the_results_own_thumbnail_is_embedded(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    (folder / "r.images").mkdir(parents=True)
    (folder / "r.images" / "c1.png").write_bytes(_png(16, 16))
    path = _write(folder / "r.jsonl", [RUN, _generation(0, image="r.images/c1.png")])
    assert safe_image(path, "r.images/c1.png") == _png(16, 16)


# --- writing: never overwrite, never share, say what was kept ------------------------------------

def test_a_new_results_file_is_never_opened_twice(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    first = ResultsWriter(path)
    with pytest.raises(ResultsError, match="already exists; results files are never overwritten"):
        ResultsWriter(path)
    first.close()


def test_two_writers_cannot_append_to_one_file_at_once(tmp_path: Path) -> None:
    path = _good_file(tmp_path / "r.jsonl")
    first = ResultsWriter(path, append=True)
    with pytest.raises(ResultsError, match="another diffbench run is writing this file"):
        ResultsWriter(path, append=True)
    first.close()
    ResultsWriter(path, append=True).close()  # free again once the first is done


def test_a_full_disk_is_one_error_that_says_what_was_kept(tmp_path: Path) -> None:
    writer = ResultsWriter(Path("/dev/full"), append=True)
    with pytest.raises(ResultsWriteError, match="the disk is full; the 0 lines written before are kept"):
        writer.write(RUN)
    writer.close()


@pytest.mark.parametrize("command", [["report", "-o", "{input}"], ["export", "--format", "csv", "-o", "{input}"]],
                         ids=lambda c: c[0])
def test_an_output_never_overwrites_an_input(tmp_path: Path, command: list[str]) -> None:
    path = _good_file(tmp_path / "r.jsonl")
    before = path.read_bytes()
    result = _cli([command[0], str(tmp_path), *(a.format(input=path) for a in command[1:])])
    assert result.exit_code == 2 and "is one of the results files being read" in result.output
    assert path.read_bytes() == before
    with pytest.raises(ResultsError):
        check_output(path, [path])


def test_export_creates_the_output_folder(tmp_path: Path) -> None:
    path = _good_file(tmp_path / "r.jsonl")
    result = _cli(["export", str(path), "--format", "csv", "-o", str(tmp_path / "new" / "dir" / "x.csv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "dir" / "x.csv").read_text().startswith("model") or \
        "s_per_image" in (tmp_path / "new" / "dir" / "x.csv").read_text()


# --- the same measurement twice ---------------------------------------------------------------------

def test_a_file_and_its_backup_copy_are_counted_once(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    path = _good_file(folder / "r.jsonl", n=4)
    shutil.copy(path, folder / "r.backup.jsonl")
    results = load_results([folder])
    assert len(results.generations) == 4 and len(results.runs) == 1
    assert any("4 generation(s) already read in" in note for note in results.notes)


def test_the_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = _good_file(tmp_path / "r.jsonl", n=3)
    (tmp_path / "link.jsonl").symlink_to(path)
    results = load_results([path, path, tmp_path / "link.jsonl"])
    assert len(results.generations) == 3
    assert sum("the same file as one already read" in note for note in results.notes) == 2


# --- estimate never prints a negative time --------------------------------------------------------

def test_a_fit_with_a_negative_per_step_cost_is_reported_unreliable(tmp_path: Path) -> None:
    lines: list[Any] = [RUN]
    for steps, wall in ((2, 0.30), (4, 0.26), (16, 0.20)):  # more steps measured faster: pure noise
        for repeat in range(3):
            record = _generation(repeat, cell=cell_settings(model="m", steps=steps, sampler="euler",
                                                            resolution="64x64"),
                                 cell_id=f"c{steps}", wall_s=wall + 0.001 * repeat, step_s=[0.01] * steps,
                                 evaluations=steps)
            lines.append(record)
    path = _write(tmp_path / "noisy.jsonl", lines)
    [answer] = estimate(with_metrics(load_results([path]).generations), 1000)
    assert not answer.reliable
    assert "NO RELIABLE ESTIMATE" in answer.sentence() and "negative cost per evaluation" in answer.sentence()
    result = _cli(["estimate", str(path), "--steps", "1000", "--verbose"])
    assert result.exit_code == 0 and "-0." not in result.output and " -" not in result.output.split("->")[1]


def test_the_prediction_interval_widens_away_from_the_measured_steps(tmp_path: Path) -> None:
    lines: list[Any] = [RUN]
    noise = [0.01, -0.01, 0.005, -0.005]
    for steps in (2, 4, 8, 16):
        for repeat in range(4):
            wall = 0.1 + 0.02 * steps + noise[repeat]
            lines.append(_generation(repeat, cell=cell_settings(model="m", steps=steps, sampler="euler",
                                                                resolution="64x64"), cell_id=f"c{steps}",
                                     wall_s=wall, step_s=[0.02] * steps, evaluations=steps))
    path = _write(tmp_path / "clean.jsonl", lines)
    frame = with_metrics(load_results([path]).generations)
    [near] = estimate(frame, 9)
    [far] = estimate(frame, 64)
    assert near.reliable and far.reliable
    assert (far.high - far.low) > 1.3 * (near.high - near.low)  # leverage: 64 steps is far from 2-16


def test_a_report_that_cannot_be_written_whole_leaves_the_previous_one(tmp_path: Path) -> None:
    """A disk that fills half way through the report (here: a file size limit, so that the write
    fails with EFBIG after the first bytes) is one line and exit 2; the report already there is
    left as it was, and no partial file stays behind."""
    import resource
    import subprocess
    import sys

    path = _good_file(tmp_path / "r.jsonl")
    output = tmp_path / "out" / "report.html"
    output.parent.mkdir()
    output.write_text("the previous report")

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # the page embeds plotly.js: MiBs

    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "report", str(path), "-o", str(output)],
                            capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "cannot write the report" in result.stderr
    assert output.read_text() == "the previous report"
    assert sorted(p.name for p in output.parent.iterdir()) == ["report.html"]
