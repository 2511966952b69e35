"""The results contract: round trip, torn last lines, schema versions, merging files and folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffbench.contract.records import cell_settings, run_record
from diffbench.contract.results import (
    ReadReport,
    ResultsError,
    ResultsWriter,
    generation_record,
    load_results,
    read_records,
)


def _write_run(path: Path, run_id: str, hostname: str, n: int, schema: int = 1) -> None:
    writer = ResultsWriter(path)
    writer.write(run_record(run_id, hostname, [{"name": "RTX 4090"}], {"name": "s", "path": "s.yaml", "sha256": "0" * 64},
                            {"torch": "2.5"}, schema_version=schema))
    for i in range(n):
        record = generation_record("c1", cell_settings(model="m", steps=2, sampler="euler"), i, False, "ok",
                                   wall_s=1.0 + i, step_s=[0.4, 0.5], evaluations=2,
                                   phases_s={"text_encode": 0.05, "denoise": 0.9, "decode": 0.05, "other": 0.0})
        record["run_id"] = run_id
        writer.write(record)
    writer.close()


def test_round_trip_and_merge_of_hosts(tmp_path: Path) -> None:
    _write_run(tmp_path / "a" / "one.jsonl", "r1", "box-4090", 3)
    _write_run(tmp_path / "two.jsonl", "r2", "box-3060", 2)
    results = load_results([tmp_path / "a", tmp_path / "two.jsonl"])
    assert sorted(results.runs["hostname"]) == ["box-3060", "box-4090"]
    assert len(results.generations) == 5 and len(results.steps) == 10
    assert set(results.generations["hostname"]) == {"box-3060", "box-4090"}
    assert results.generations["phase_denoise"].tolist() == [0.9] * 5
    assert results.runs["gpu_names"].tolist() == ["RTX 4090", "RTX 4090"]


def test_a_torn_last_line_is_skipped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    _write_run(path, "r1", "h", 3)
    with path.open("a") as handle:
        handle.write('{"type": "generation", "cell_id": "c1", "rep')
    report = ReadReport()
    records = read_records(path, report=report)
    assert len(records) == 4
    assert report.notes == [f"{path}:5: incomplete last line passed over (the run was interrupted)"]


def test_garbage_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    _write_run(path, "r1", "h", 2)
    lines = path.read_text().splitlines()
    lines.insert(1, "not json")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultsError, match=r"bad\.jsonl:2: not a results line"):
        read_records(path)


def test_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    _write_run(path, "r1", "h", 1, schema=99)
    with pytest.raises(ResultsError, match="newer diffbench"):
        read_records(path)


def test_unknown_statuses_cannot_be_written() -> None:
    with pytest.raises(ValueError):
        generation_record("c", {}, 0, False, "fine")


def test_lines_are_on_disk_as_soon_as_written(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "RTX 4090"}], {"name": "s"}, host={"cpu": "x86"}))
    assert json.loads(path.read_text())["run_id"] == "r"  # before close
    writer.close()


def test_a_line_that_breaks_the_contract_never_reaches_the_file(tmp_path: Path) -> None:
    """Lines are checked as they are written, as they will be when read: a record diffbench made
    wrong (a bug) is refused in one line and the file keeps only whole, valid lines."""
    from diffbench.contract.results import ContractBreach

    path = tmp_path / "checked.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "RTX 4090"}], {"name": "s"}, host={"cpu": "x86"}))
    with pytest.raises(ContractBreach, match="field 'started_at' is missing"):
        writer.write({"type": "run", "run_id": "r2", "schema_version": 1})
    record = generation_record("c", cell_settings(model="m", steps=2, sampler="euler"), 0, False, "ok", wall_s=1.0)
    record["run_id"] = "r"
    with pytest.raises(ContractBreach, match="cell.vae_tiling"):
        writer.write({**record, "cell": {**record["cell"], "vae_tiling": "yes"}})
    writer.close()
    assert [json.loads(line)["run_id"] for line in path.read_text().splitlines()] == ["r"]
    assert len(load_results([path]).runs) == 1


def test_missing_path_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such file"):
        load_results([tmp_path / "absent"])


def test_the_generations_frame_is_the_one_its_rows_give_whatever_columns_each_row_has(tmp_path: Path) -> None:
    """Rows are gathered column by column to save memory; the frame must be exactly the one a list
    of the rows gives, also where rows differ in columns (runtime notes, telemetry, a phase only
    some tasks have, a failure without timings): NaN where a row lacks a column, None kept as None."""
    import pandas as pd
    from pandas.testing import assert_frame_equal

    from diffbench.contract.results import generation_row

    path = tmp_path / "mixed.jsonl"
    writer = ResultsWriter(path)
    writer.write(run_record("r", "box", [{"name": "RTX 4090"}], {"name": "s", "path": "s.yaml", "sha256": "0" * 64},
                            {"torch": "2.5"}))
    variants = [
        {"runtime": {"device": "cuda:0", "notes": ["offloaded"]}, "phases_s": {"text_encode": 0.1, "denoise": 1.0}},
        {"telemetry": {"energy_j": 5.0, "samples": 3}, "phases_s": {"image_encode": 0.2, "denoise": 1.0}},
        {"runtime": {"device": "cuda:0", "gpu_name": "RTX 4090"}},
        {},
    ]
    for i, extra in enumerate(variants * 2):
        ok = i % 4 != 3
        record = generation_record(f"c{i % 3}", cell_settings(model="m", steps=2, sampler="euler"), i, False,
                                   "ok" if ok else "error", None if ok else "boom",
                                   wall_s=1.0 + i if ok else None, step_s=[0.4, 0.5 + i] if ok else [],
                                   evaluations=2 if ok else 0, **extra)
        record["run_id"] = "r"
        writer.write(record)
    writer.close()
    loaded = load_results([path]).generations
    rows = [generation_row(r, {"hostname": "box"}, str(path)) for r in read_records(path, False, ReadReport())
            if r["type"] == "generation"]
    expected = pd.DataFrame(rows)
    assert_frame_equal(loaded.drop(columns=["host_cpu", "quality_reference"]),
                       expected.drop(columns=["host_cpu", "quality_reference"]), check_exact=True)
    assert {"runtime_notes", "telemetry_energy_j", "phase_image_encode"} <= set(loaded.columns)
    assert loaded["telemetry_energy_j"].isna().sum() == 6 and loaded["error"].isna().sum() == 6
