"""Red team round 4 (issue 40): hostile CLIP checkpoints, results lines and pictures, each generated
here as the red team made them, run against the real loaders and the real CLI."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffbench.contract.records import LineError, cell_settings, generation_record, run_record, validate_line
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError
from diffbench.measure.clipscore import RANDOM_WEIGHTS, ClipError, ClipScorer, checkpoint_identity, checkpoint_problem
from diffbench.models.tinyclip import tiny_clip_path

MARKER = "code-from-the-checkpoint-ran"


def _cli(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "diffbench.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, input=stdin)


def _clip_copy(tmp_path: Path, name: str = "clip") -> Path:
    folder = tmp_path / name
    shutil.copytree(tiny_clip_path(), folder)
    return folder


def _edit_json(folder: Path, file: str, change: Callable[[dict], object]) -> None:
    path = folder / file
    document = json.loads(path.read_text())
    replaced = change(document)
    path.write_text(json.dumps(document if replaced is None else replaced))


def _with_remote_code(folder: Path, file: str) -> None:
    """The red team's N1 folder: a module that would leave a marker, named by auto_map in `file`."""
    (folder / "evil.py").write_text(f"open({str(folder / MARKER)!r}, 'w').write('ran')\n"
                                    "from transformers import CLIPModel as EvilModel\n")
    _edit_json(folder, file, lambda d: d.update(auto_map={"AutoModel": "evil.EvilModel",
                                                            "AutoImageProcessor": "evil.EvilModel",
                                                            "AutoTokenizer": ["evil.EvilModel", None]}))


# --- N1: a folder that asks to run its own code is refused before any loader sees it ---------

@pytest.mark.parametrize("file", ["config.json", "preprocessor_config.json", "tokenizer_config.json"])
def test_a_clip_folder_with_auto_map_is_refused_at_validate_and_never_runs(tmp_path: Path, file: str) -> None:
    folder = _clip_copy(tmp_path)
    _with_remote_code(folder, file)
    problem = checkpoint_problem("clip", tmp_path)
    assert problem is not None and "auto_map" in problem and file in problem and "\n" not in problem
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\nquality: {clip: clip}\n")
    with pytest.raises(SuiteError, match=r"s.yaml:4: field 'quality.clip'.*auto_map"):
        load_suite(suite)
    with pytest.raises(ClipError, match="auto_map"):
        ClipScorer.load("clip", tmp_path)
    results = _results_with_pictures(tmp_path, 1)
    answered = _cli("score", str(results), "--clip", str(folder), stdin="y\ny\ny\n")  # `yes |` in a script
    assert answered.returncode == 2 and answered.stderr.count("\n") == 1 and "auto_map" in answered.stderr
    assert "[y/N]" not in answered.stdout + answered.stderr
    assert not (folder / MARKER).exists()


# --- N3: folders transformers cannot read are one line, never a traceback ---------------------

def _deep(folder: Path) -> None:
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def _safetensors_header(length: int, header: bytes = b"") -> Callable[[Path], None]:
    return lambda folder: (folder / "model.safetensors").write_bytes(struct.pack("<Q", length) + header)


def _nested_header(folder: Path) -> None:
    header = b'{"a": ' + b'{"b": ' * 50_000 + b"1" + b"}" * 50_001
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)


def _pickle_as_safetensors(folder: Path) -> None:
    import pickle

    (folder / "model.safetensors").write_bytes(pickle.dumps({"weight": list(range(100))}))


HOSTILE_FOLDERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "nested 100,000 deep": (_deep, "nests too deep"),
    "config is a list": (lambda f: (f / "config.json").write_text("[1, 2]"), "not a table"),
    "width is text": (lambda f: _edit_json(f, "config.json", lambda d: d["text_config"].update(hidden_size="wide")),
                      "hidden_size"),
    "negative layers": (lambda f: _edit_json(f, "config.json",
                                             lambda d: d["vision_config"].update(num_hidden_layers=-3)),
                        "num_hidden_layers is -3"),
    "huge width": (lambda f: _edit_json(f, "config.json", lambda d: d["text_config"].update(hidden_size=10**12)),
                   "hidden_size"),
    "width a bool": (lambda f: _edit_json(f, "config.json", lambda d: d.update(projection_dim=True)),
                     "projection_dim"),
    "not clip": (lambda f: _edit_json(f, "config.json", lambda d: d.update(model_type="bert")), "not 'clip'"),
    "vocab not utf-8": (lambda f: (f / "vocab.json").write_bytes(b'{"\xff\xfe": 1}'), "not UTF-8"),
    "merges not utf-8": (lambda f: (f / "merges.txt").write_bytes(b"#version\n\xff \xfe\n"), "not UTF-8"),
    "vocab wrong types": (lambda f: (f / "vocab.json").write_text('{"a": "one"}'), "vocab.json"),
    "header of 2^40": (_safetensors_header(2**40), "header length 1099511627776"),
    "nested header": (_nested_header, "nests too deep"),
    "pickle named model.safetensors": (_pickle_as_safetensors, "not a .safetensors file"),
    "weights cut short": (lambda f: (f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes()[:-100]), "cut short"),
    "no safetensors": (lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"), "never a pickle"),
    "a shard outside": (lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "../../etc/passwd"}}))), "shard"),
    "preprocessor a FIFO": (lambda f: ((f / "preprocessor_config.json").unlink(),
                                       __import__("os").mkfifo(f / "preprocessor_config.json")), "a FIFO"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_FOLDERS))
def test_a_clip_folder_no_real_checkpoint_could_be_is_one_line(tmp_path: Path, case: str) -> None:
    spoil, message = HOSTILE_FOLDERS[case]
    spoil(_clip_copy(tmp_path))
    problem = checkpoint_problem("clip", tmp_path)
    assert problem is not None and message in problem and "\n" not in problem, problem
    with pytest.raises(ClipError, match="clip"):
        ClipScorer.load("clip", tmp_path)


def test_a_folder_that_passes_the_policy_but_not_transformers_is_still_one_line(tmp_path: Path) -> None:
    """Dimensions a real CLIP could have, but not those of its weights: transformers' own error,
    whatever its type, becomes a ClipError."""
    folder = _clip_copy(tmp_path)
    _edit_json(folder, "config.json", lambda d: d["text_config"].update(hidden_size=64, intermediate_size=96))
    assert checkpoint_problem("clip", tmp_path) is None
    with pytest.raises(ClipError, match="cannot be loaded"):
        ClipScorer.load("clip", tmp_path)
    results = _results_with_pictures(tmp_path, 2)
    scored = _cli("score", str(results), "--clip", str(folder))
    assert scored.returncode == 2 and scored.stderr.count("\n") == 1 and "Traceback" not in scored.stderr


# --- N11, N12, N16, N17: score locks before it reads, knows a folder by its path, skips bad pictures

def _png(seed: int, side: int = 48) -> bytes:
    import io

    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _results_with_pictures(folder: Path, count: int, name: str = "r.jsonl") -> Path:
    """A results file as a run with `quality: {clip: ...}` leaves it: one generation per cell, each
    with a full-resolution picture beside the file."""
    path = folder / name
    images = folder / (path.stem + ".images")
    images.mkdir(exist_ok=True)
    lines = [run_record("r1", "host")]
    for i in range(count):
        (images / f"c{i}.full.png").write_bytes(_png(i))
        lines.append({**generation_record(f"c{i}", cell_settings(prompt=f"a picture number {i}"), 0, False, "ok",
                                          wall_s=1.0, step_s=[0.5], evaluations=1),
                      "run_id": "r1", "image_full": f"{images.name}/c{i}.full.png",
                      "image_full_sha256": __import__("hashlib").sha256(_png(i)).hexdigest()})
    for line in lines:
        validate_line(line)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _quality_lines(path: Path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["type"] == "quality"]


def test_the_same_file_twice_or_two_spellings_of_one_folder_score_once(tmp_path: Path) -> None:
    results = _results_with_pictures(tmp_path, 3)
    _clip_copy(tmp_path, "f")
    first = _cli("score", "r.jsonl", "./r.jsonl", "--clip", "f", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = [_cli("score", str(results), "--clip", spelling, cwd=tmp_path) for spelling in ("./f", str(tmp_path / "f"))]
    assert all(r.returncode == 0 and "already has a CLIP score" in r.stdout for r in again), again
    lines = _quality_lines(results)
    assert len(lines) == 3 and {line["checkpoint"] for line in lines} == {str((tmp_path / "f").resolve())}
    # another folder under the same relative name, elsewhere, is another checkpoint
    other = tmp_path / "elsewhere"
    other.mkdir()
    _clip_copy(other, "f")
    assert checkpoint_identity("f", other) != checkpoint_identity("f", tmp_path)
    moved = _cli("score", str(results), "--clip", "f", cwd=other)
    assert moved.returncode == 0 and "3 CLIP score(s)" in moved.stdout, moved.stdout + moved.stderr
    assert len(_quality_lines(results)) == 6


def _truncated_idat(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _ztxt_bomb(data: bytes) -> bytes:
    payload = b"k\x00\x00" + zlib.compress(b"\x00" * 200 * 2**20, 9)
    chunk = struct.pack(">I", len(payload) - 0) + b"zTXt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + payload) & 0xFFFFFFFF)
    return data[:33] + chunk + data[33:]


def _bad_ihdr_crc(data: bytes) -> bytes:
    return data[:29] + bytes(b ^ 0xFF for b in data[29:33]) + data[33:]


@pytest.mark.parametrize("spoil", [_truncated_idat, _ztxt_bomb, _bad_ihdr_crc])
def test_a_damaged_picture_is_named_and_the_others_are_still_scored(tmp_path: Path, spoil) -> None:
    results = _results_with_pictures(tmp_path, 3)
    damaged = tmp_path / "r.images" / "c1.full.png"
    damaged.write_bytes(spoil(damaged.read_bytes()))
    (tmp_path / "r.images" / "c2.full.png").unlink()
    scored = _cli("score", str(results), "--clip", RANDOM_WEIGHTS)
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stderr
    assert "1 CLIP score(s) of builtin:tiny-clip added, 2 picture(s) not scored" in scored.stdout
    assert "c1: " in scored.stderr and "c2: " in scored.stderr
    assert [line["cell_id"] for line in _quality_lines(results)] == ["c0"]


# --- N2, N13: one numeric and type policy for every field read from a results file -------------

@pytest.mark.parametrize(("cell", "message"), [
    ({"fps": 10**400}, "field 'cell.fps': a whole number of about 400 digits"),
    ({"frames": 2**64}, "field 'cell.frames'"),
    ({"my_own_axis": -(10**30)}, "field 'cell.my_own_axis'"),
    ({"fps": 1000}, "field 'cell.fps': Input should be less than or equal to 240"),
    ({"strength": "high"}, "field 'cell.strength'"),
    ({"recipe": ["a", "b"]}, "field 'cell.recipe'"),
    ({"compile": 1}, "field 'cell.compile'"),
    ({"vae_tiling": "yes"}, "field 'cell.vae_tiling': Input should be a valid boolean (given 'yes')"),
    ({"offload": "sometimes"}, "field 'cell.offload': Input should be 'none', 'model', 'sequential', 'group-block' "
                               "or 'group-leaf' (given 'sometimes')"),
    ({"dtype": "float16"}, "field 'cell.dtype'"),
    ({"task": "text-to-3d"}, "field 'cell.task'"),
])
def test_a_results_field_beyond_its_type_is_refused_with_its_name(cell: dict, message: str) -> None:
    line = {**generation_record("c", cell_settings(**cell), 0, False, "not_applicable", "x"), "run_id": "r"}
    with pytest.raises(LineError, match=re.escape(message)):
        validate_line(line)


def test_a_results_file_with_a_setting_outside_its_axis_is_refused_at_its_line(tmp_path: Path) -> None:
    from diffbench.contract.results import ResultsError, read_records

    line = {**generation_record("c", cell_settings(offload="model"), 0, False, "ok", wall_s=1.0, step_s=[0.5],
                                evaluations=1), "run_id": "r1"}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(run_record("r1", "host")) + "\n" + json.dumps(line) + "\n"
                    + json.dumps(line).replace('"offload": "model"', '"offload": "sometimes"') + "\n")
    with pytest.raises(ResultsError, match=re.escape(f"{path}:3: field 'cell.offload'")):
        read_records(path)


def test_a_non_finite_number_anywhere_is_refused() -> None:
    line = {**generation_record("c", cell_settings(), 0, False, "not_applicable", "x"), "run_id": "r",
            "telemetry": {"power": [1.0, float("inf")]}}
    with pytest.raises(LineError, match=r"field 'telemetry.power\[1\]'"):
        validate_line(line)


@pytest.mark.parametrize(("extra", "refused"), [
    ('"step_s": [0.5, NaN]', "field 'step_s[1]'"),
    ('"telemetry": {"power": [1.0, -Infinity]}', "field 'telemetry.power[1]'"),
    ('"telemetry": {"count": 18446744073709551616}', "field 'telemetry.count'"),
    ('"telemetry": {"note": "NaN Infinity 12345678901234567890"}', None),  # only text: read
    ('"telemetry": {"count": 9223372036854775807}', None),  # int64's largest: read
])
def test_the_number_policy_holds_when_reading_files(tmp_path: Path, extra: str, refused: str | None) -> None:
    """read_records passes the line's text, which spares the walk over every value when the text
    cannot hold a number outside the policy: what is refused and what is read stays the same."""
    from diffbench.contract.results import ResultsError, read_records

    line = {**generation_record("c", cell_settings(), 0, False, "ok", wall_s=1.0, step_s=[0.5, 0.5],
                                evaluations=2), "run_id": "r1"}
    text = json.dumps(line)
    path = tmp_path / "r.jsonl"
    if extra.startswith('"step_s"'):
        text = text.replace('"step_s": [0.5, 0.5]', extra)
    else:
        text = text[:-1] + ", " + extra + "}"
    path.write_text(json.dumps(run_record("r1", "host")) + "\n" + text + "\n")
    if refused is None:
        assert len(read_records(path)) == 2
    else:
        with pytest.raises(ResultsError, match=re.escape(refused)):
            read_records(path)


def test_a_strength_of_one_written_as_a_whole_number_is_read() -> None:
    validate_line({**generation_record("c", cell_settings(strength=1, frames=9, fps=24), 0, False,
                                       "not_applicable", "x"), "run_id": "r"})


@pytest.mark.parametrize("command", [["report", "-o", "REPORT"], ["compare", "--by", "steps"], ["export"],
                                     ["recommend"], ["estimate", "--steps", "8"]])
def test_every_reader_refuses_a_huge_field_in_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "r.jsonl"
    line = {**generation_record("c", cell_settings(), 0, False, "ok", wall_s=1.0, step_s=[0.5], evaluations=1),
            "run_id": "r1"}
    text = json.dumps(run_record("r1", "host")) + "\n" + json.dumps(line) + "\n"
    path.write_text(text.replace('"model": "model"', '"fps": ' + "9" * 400 + ', "model": "model"'))
    args = [str(tmp_path / "report.html") if a == "REPORT" else a for a in command]
    result = _cli(args[0], str(path), *args[1:])
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and f"{path}:2" in result.stderr and "cell.fps" in result.stderr


# --- N5, N29, N30: one path policy for the files a suite names; prompt lines are lines ----------

def _suite_with(tmp_path: Path, line: str) -> Path:
    suite = tmp_path / "suites" / "s.yaml"
    suite.parent.mkdir(exist_ok=True)
    suite.write_text(f"name: s\nmodels:\n  t: {{source: 'builtin:tiny-sd'}}\n{line}\n")
    return suite


@pytest.mark.parametrize(("line", "message"), [
    ("prompts: /proc/self/environ", "under /proc, a kernel or device file system"),
    ("prompts: ../secrets.txt", "lies outside the suite's folder"),
    ("prompts: ~/.ssh/id_rsa", "write the absolute path instead of ~"),
    ("prompts: inside/../../secrets.txt", "lies outside the suite's folder"),
    ("prompts: link.txt", "lies outside the suite's folder"),
    ("matrix: {init_image: [../secrets.txt], task: [image-to-image]}", "lies outside the suite's folder"),
    ("matrix: {lora: [../style.safetensors]}", "lies outside the suite's folder"),
    ("quality: {clip: ../clip}", "lies outside the suite's folder"),
])
def test_a_suite_reads_no_file_outside_its_tree_or_from_procfs(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "secrets.txt").write_text("TOKEN=hunter2\n")
    suite = _suite_with(tmp_path, line)
    (suite.parent / "link.txt").symlink_to(tmp_path / "secrets.txt")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite)
    text = str(caught.value)
    assert message in text and "\n" not in text and "hunter2" not in text, text


def test_an_absolute_path_outside_the_tree_is_read_as_written(tmp_path: Path) -> None:
    (tmp_path / "prompts.txt").write_text("a cat\na dog\n")
    suite = load_suite(_suite_with(tmp_path, f"prompts: {tmp_path / 'prompts.txt'}"))
    assert suite.matrix["prompt"] == ["a cat", "a dog"]


@pytest.mark.parametrize("inside", ["\f", "\x1c", "\x85", "\u2028", "\u202e", "\x1b]52;c;aGk=\x07"])
def test_a_prompt_line_is_split_at_newlines_only_and_controls_are_refused(tmp_path: Path, inside: str) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "p.txt").write_text(f"a cat{inside}a dog\nan owl\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="line 1 of .* holds the control character"):
        load_suite(_suite_with(tmp_path, "prompts: p.txt"))


def test_a_byte_order_mark_and_windows_line_ends_are_not_part_of_a_prompt(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "p.txt").write_bytes("\ufeffa cat\r\nan owl\r\n".encode())
    assert load_suite(_suite_with(tmp_path, "prompts: p.txt")).matrix["prompt"] == ["a cat", "an owl"]


def test_bidirectional_overrides_are_escaped_in_every_message() -> None:
    from diffbench.errors import one_line

    assert one_line("gpu\u202eevil") == "gpu\\u202eevil"


# --- N4: export escapes what reaches a terminal or a document -----------------------------------

def test_export_shows_control_sequences_as_escapes_and_markdown_escapes_html(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    prompt = "\x1b]52;c;ZWNobyBvd25lZA==\x07\x1b]0;title\x07<img src=x onerror=alert(1)>"
    lines = [run_record("r1", "host")]
    for repeat in range(3):
        lines.append({**generation_record("c", cell_settings(prompt=prompt), repeat, False, "ok", wall_s=1.0 + repeat / 10,
                                          step_s=[0.5], evaluations=1), "run_id": "r1"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for fmt in ("markdown", "csv"):
        result = _cli("export", str(path), "--format", fmt, "--level", "generations")
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\\x1b]52" in result.stdout
        if fmt == "markdown":
            assert "<img" not in result.stdout and "&lt;img" in result.stdout


# --- N9, N21, N23, N24: options that would silently mean something else -------------------------

def _two_step_counts(tmp_path: Path, repeats: int) -> Path:
    path = tmp_path / "r.jsonl"
    lines = [run_record("r1", "host")]
    for steps in (4, 8):
        for repeat in range(repeats):
            lines.append({**generation_record(f"c{steps}", cell_settings(steps=steps), repeat, False, "ok",
                                              wall_s=steps * (1 + repeat / 100), step_s=[1.0] * steps,
                                              evaluations=steps), "run_id": "r1"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "--by", "steps", "--fail-above", "5"], "ambiguous; write 5% for a percentage"),
    (["compare", "--by", "steps", "--fail-above", "nan%"], "expected a percentage above 0%"),
    (["compare", "--by", "steps", "--min-effect", "nan"], "--min-effect nan"),
    (["compare", "--by", "steps", "--min-effect", "5"], "--min-effect 5.0"),
    (["compare", "--by", "steps", "--min-effect", "-1"], "--min-effect -1.0"),
    (["recommend", "--max-seconds", "nan"], "--max-seconds nan"),
    (["recommend", "--max-seconds", "-1"], "--max-seconds -1.0"),
    (["recommend", "--min-quality", "nan"], "--min-quality nan"),
    (["recommend", "--gpu", ""], "--gpu is empty"),
    (["recommend", "--vram", " "], "--vram is empty"),
    (["estimate", "--steps", "8", "--gpu", ""], "--gpu is empty"),
])
def test_an_option_that_would_silently_mean_something_else_is_refused(tmp_path: Path, args: list[str],
                                                                      message: str) -> None:
    path = _two_step_counts(tmp_path, 3)
    result = _cli(args[0], str(path), *args[1:])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_a_gate_that_judged_nothing_does_not_pass(tmp_path: Path) -> None:
    path = _two_step_counts(tmp_path, 2)  # two repeats a cell: too few to judge
    result = _cli("compare", str(path), "--by", "steps", "--fail-above", "5%")
    assert result.returncode == 3 and "the gate judged no value" in result.stderr, result.stdout + result.stderr


# --- N25: a damaged calibration is one line, and NaN or negative constants are refused -----------

@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["parameters"].update(overlap=float("nan")), "parameters.overlap is nan"),
    (lambda d: d["parameters"]["architecture_factor"].update(Ada=-1.3), "architecture_factor.Ada is -1.3"),
    (lambda d: d["parameters"].pop("kernel_floor_s"), "not a calibration diffbench wrote"),
    (lambda d: d.update(leave_one_out=[["x", 1.0]]), "not a calibration diffbench wrote"),
    (lambda d: d.update(parameters=[1, 2]), "not a calibration diffbench wrote"),
])
def test_a_damaged_calibration_is_refused_by_field(change: Callable[[dict], object], message: str) -> None:
    from diffbench.analysis.calibration import CalibrationError, checked_calibration

    data = json.loads((Path(__file__).parent.parent / "diffbench" / "hardware" / "calibration.json").read_text())
    checked_calibration(json.loads(json.dumps(data)), "calibration.json")  # the shipped one passes
    change(data)
    with pytest.raises(CalibrationError, match=message.replace(".", r"\.")):
        checked_calibration(data, "calibration.json")


# --- N10: a shape the counting cannot run is remembered; counting is bounded --------------------

def test_a_shape_that_cannot_be_counted_is_remembered_and_the_cache_is_bounded(tmp_path: Path, monkeypatch) -> None:
    from diffbench.measure import workload

    monkeypatch.setenv("DIFFBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(workload, "_READ", {})
    with pytest.raises(workload.CountError, match="cannot be counted"):
        workload.count_workload("sd15", "0x0")

    def never(*args, **kwargs):
        raise AssertionError("counted again")

    monkeypatch.setattr(workload, "_count", never)
    with pytest.raises(workload.CountError, match="cannot be counted"):  # from the cache, not counted again
        workload.count_workload("sd15", "0x0")
    monkeypatch.setattr(workload, "_fresh_counts", workload.MAX_FRESH_COUNTS)
    with pytest.raises(workload.CountError, match="distinct shapes to count in one command"):
        workload.count_workload("sd15", "8x8")
    folder = tmp_path / "cache" / "workloads"
    monkeypatch.setattr(workload, "MAX_CACHED_COUNTS", 3)
    for i in range(6):
        workload._store(folder / f"entry{i}.json", {"error": str(i)})
    assert len(list(folder.glob("*.json"))) == 3


# --- N20: a resolution the family's pipeline refuses fails at validate, not after the load ----------

@pytest.mark.parametrize(("model", "resolution"), [("tiny-wan", "8x8"), ("tiny-flux", "72x72"), ("tiny-sd3", "40x40")])
def test_a_resolution_the_pipeline_refuses_fails_validation(tmp_path: Path, model: str, resolution: str) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nmodels:\n  m: {{source: 'builtin:{model}'}}\ndefaults: {{resolution: {resolution}}}\n")
    with pytest.raises(SuiteError, match=f"needs width and height in multiples of 16; {resolution} is not"):
        load_suite(suite)


# --- N32: two differing quality lines for one cell and checkpoint are said -------------------------

def test_two_different_scores_of_one_cell_are_named(tmp_path: Path) -> None:
    import pandas as pd

    from diffbench.analysis.tradeoff import scored_cells

    summary = pd.DataFrame({"cell_id": ["c1", "c2"], "hostname": ["h", "h"], "s_per_image": [1.0, 2.0]})
    quality = pd.DataFrame({"cell_id": ["c1", "c1", "c2", "c2"], "hostname": ["h"] * 4, "metric": ["clip_score"] * 4,
                            "checkpoint": ["ck"] * 4, "value": [30.0, 31.5, 20.0, 20.0]})
    scores = scored_cells(summary, quality)
    assert scores.cells.set_index("cell_id")["clip_score"].to_dict() == {"c1": 31.5, "c2": 20.0}
    assert [n for n in scores.notes if "differ" in n] == \
        ["cell c1 on h has 2 CLIP scores of ck that differ (30.00 to 31.50): the last one written is used"]


# --- N15: on a full disk the torn line is taken out, as the message says ---------------------------

def test_a_line_the_disk_cannot_hold_is_taken_out_again(tmp_path: Path) -> None:
    """A file size limit (RLIMIT_FSIZE) stands for a full disk: the write of a long line stops part
    way with EFBIG, as it would with ENOSPC."""
    script = f"""
import resource, signal, sys
from pathlib import Path
from diffbench.contract.records import run_record
from diffbench.contract.results import ResultsWriter, ResultsWriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path = Path({str(tmp_path / 'r.jsonl')!r})
writer = ResultsWriter(path)
writer.write(run_record("r1", "host"))
size = path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, resource.RLIM_INFINITY))
try:
    writer.write(run_record("r1", "host", suite={{"name": "x" * 5000}}))
except ResultsWriteError as exc:
    print("error:", exc)
writer.close()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "the 1 lines written before are kept" in result.stdout, result.stdout + result.stderr
    text = (tmp_path / "r.jsonl").read_text()
    assert text.endswith("\n") and text.count("\n") == 1 and json.loads(text)["type"] == "run"


# --- N33: a Ray address that answers nothing is one line, at once -------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1:9", "\x1b]0;title\x07:6379", "nonsense"])
def test_an_unreachable_ray_cluster_is_one_line(tmp_path: Path, address: str) -> None:
    pytest.importorskip("ray")
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {device: cpu, steps: 1}\n"
                     "warmup: 0\nrepeats: 1\n")
    result = _cli("run", str(suite), "--out", str(tmp_path / "out"), "--executor", "ray", "--address", address)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr and "Traceback" not in result.stderr
    assert "Ray cluster" in result.stderr or "HOST:PORT" in result.stderr


# --- N17, N18: a picture that is not the one generated is named, not scored -------------------------

@pytest.mark.parametrize("spoil", ["replaced", "link", "jpeg"])
def test_a_picture_that_is_not_the_one_generated_is_named_not_scored(tmp_path: Path, spoil: str) -> None:
    results = _results_with_pictures(tmp_path, 2)
    target = tmp_path / "r.images" / "c1.full.png"
    if spoil == "replaced":  # another valid PNG in its place
        target.write_bytes(_png(99))
    elif spoil == "link":
        target.unlink()
        target.symlink_to(tmp_path / "r.images" / "c0.full.png")
    else:
        import io

        buffer = io.BytesIO()
        Image.open(io.BytesIO(_png(1))).save(buffer, format="JPEG")
        target.write_bytes(buffer.getvalue())
    scored = _cli("score", str(results), "--clip", RANDOM_WEIGHTS)
    assert scored.returncode == 0, scored.stderr
    assert "1 CLIP score(s) of builtin:tiny-clip added, 1 picture(s) not scored" in scored.stdout
    assert "c1: " in scored.stderr
    assert [line["cell_id"] for line in _quality_lines(results)] == ["c0"]


# --- N19: an uncached Hub checkpoint with no Hub in reach is one line, in seconds ------------------

def test_an_uncached_clip_checkpoint_with_no_hub_in_reach_is_one_line(tmp_path: Path) -> None:
    import os

    results = _results_with_pictures(tmp_path, 1)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))  # nothing listens on port 9
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "score", str(results), "--clip", "owner/not-cached"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "the Hub cannot be reached" in result.stderr


# --- N26: a cold count prints no library noise ------------------------------------------------------

def test_a_cold_count_prints_nothing_but_the_answer(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "DIFFBENCH_CACHE": str(tmp_path / "cold")}
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "estimate", "--model", "sd15", "--resolution",
                             "576x576", "--steps", "20", "--gpu", "3060"], capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert result.stdout.startswith("sd15 · 576x576")


# --- N6: a resumed run scores the pictures measured before the interruption --------------------------

def test_a_resumed_run_scores_the_pictures_measured_before_it_stopped(tmp_path: Path) -> None:
    from diffbench.execute.runner import run_suite

    suite_path = tmp_path / "s.yaml"
    suite_path.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\n"
                          "defaults: {device: cpu, steps: 2, resolution: 64x64}\nmatrix: {seed: [1, 2]}\n"
                          "quality: {clip: 'builtin:tiny-clip'}\nwarmup: 0\nrepeats: 1\n")
    suite = load_suite(suite_path)
    outcome = run_suite(suite, tmp_path / "out")
    path = outcome.results_path
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    cells = [r["cell_id"] for r in lines if r["type"] == "generation"]
    assert len(set(cells)) == 2
    # as if interrupted after the first cell, before anything was scored
    kept = [r for r in lines if r["type"] not in ("quality",) and r.get("cell_id") != cells[-1]]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    run_suite(suite, tmp_path / "out", resume=path)
    scored = {r["cell_id"] for r in map(json.loads, path.read_text().splitlines()) if r["type"] == "quality"}
    assert scored == set(cells)  # the first cell's picture too, measured before the interruption


def test_a_closed_pipe_ends_a_command_quietly_with_0(tmp_path: Path) -> None:
    """Issue 36: `diffbench compare ... | head -3` exited 1, a code the README's table does not list."""
    runs = Path(__file__).parent.parent / "docs" / "gpu-runs"
    process = subprocess.Popen([sys.executable, "-m", "diffbench.cli", "compare", str(runs), "--by", "offload"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(100)
    process.stdout.close()  # the reader goes away, as head does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, stderr
    assert "Traceback" not in stderr and "Broken pipe" not in stderr


@pytest.mark.parametrize("steps", ["20 steps", "20", "1 step"])
def test_steps_are_understood_the_way_suites_write_them(steps: str) -> None:
    result = _cli("estimate", "--model", "sd15", "--steps", steps, "--gpu", "4090", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answers"][0]["steps"] == int(steps.split()[0])


# --- the memory floor's blind spot: a CPU cell whose attention no CPU finishes ----------------------

def test_a_cpu_cell_whose_attention_no_cpu_finishes_is_not_tried(tmp_path: Path) -> None:
    """Red team: tiny-sd at 4096x4096 passed the memory floor and one step ran for over ten minutes
    (UNet attention over 262,144 tokens) with nothing estimating it. plan says so; run records it."""
    from diffbench.rules.memoryfloor import attention_tokens

    assert attention_tokens({"family": "sd", "resolution": "4096x4096"}) == 262_144
    assert attention_tokens({"family": "sdxl", "resolution": "1024x1024"}) == 4096
    assert attention_tokens({"family": "wan", "resolution": "832x480", "frames": 81}) == 52 * 30 * 21
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {device: cpu, steps: 1}\n"
                     "matrix: {resolution: [64x64, 4096x4096]}\nwarmup: 0\nrepeats: 1\n")
    planned = _cli("plan", str(suite), "--json")
    assert planned.returncode == 0, planned.stderr
    assert "262,144 tokens" in planned.stdout and "not tried on a CPU" in planned.stdout
