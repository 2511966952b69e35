"""The metric registry is the one place a metric is declared: a metric registered here (the recipe
in docs/architecture.md) reaches the per-generation frame, the cell summary, comparisons, the
report's tables and the export without touching any other module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_compare import write_host

from diffbench.analysis import metrics
from diffbench.analysis.compare import compare
from diffbench.analysis.tables import cell_summary, with_metrics
from diffbench.contract.results import load_results
from diffbench.report.export import export_table
from diffbench.report.html import build_report


@pytest.fixture()
def denoise_share() -> Iterator[metrics.Metric]:
    declared = metrics.register(metrics.Metric(
        "denoise_share", "share of the time spent denoising", "fraction", "higher",
        lambda f: f["phase_denoise"].astype(float) / f["wall_s"].astype(float), summary="max"))
    yield declared
    del metrics.METRICS[declared.name]


def test_a_registered_metric_flows_to_summaries_comparisons_report_and_export(tmp_path: Path,
                                                                              denoise_share: metrics.Metric) -> None:
    write_host(tmp_path / "a.jsonl", "box-4090", "NVIDIA GeForce RTX 4090", {("euler", 30): 3.0, ("ddim", 30): 6.0})
    results = load_results([tmp_path])
    frame = with_metrics(results.generations)
    assert frame["denoise_share"].round(6).eq(0.9).all()  # write_host puts 90% of the wall time in denoising

    summary = cell_summary(frame)
    assert summary["denoise_share"].round(6).eq(0.9).all()

    table = compare(frame, "sampler", baseline="euler", metric="denoise_share")
    assert [row.value for row in table.rows] == ["euler", "ddim"]
    assert table.rows[1].comparison is not None and table.rows[1].comparison.ratio == pytest.approx(1.0)

    report = build_report([tmp_path], tmp_path / "report.html", results=results)
    assert "share of the time spent denoising" in report.path.read_text(encoding="utf-8")

    exported = export_table([tmp_path], results=results)
    assert "denoise_share" in exported.columns


def test_a_metric_name_is_declared_once(denoise_share: metrics.Metric) -> None:
    with pytest.raises(ValueError, match="already declared"):
        metrics.register(denoise_share)


def test_an_unknown_metric_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown metric 'speed'.*s_per_image"):
        metrics.metric("speed")
