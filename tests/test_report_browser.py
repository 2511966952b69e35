"""The HTML report in a real browser (headless Debian Chromium): drawn, offline, and inert to injection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diffbench.report.html import build_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAYLOAD = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="headless Chromium is not installed (scripts/test.sh installs it as root)",
)


def _run_quickstart(repo: Path, out: Path, hostname: str | None = None) -> Path:
    """The quickstart suite at 3 repeats a cell: the report is what is tested here (the quickstart
    itself, repeats: auto, is run whole by tests/test_run.py)."""
    text = (repo / "suites" / "quickstart.yaml").read_text().replace("repeats: auto", "repeats: 3")
    assert "repeats: 3" in text
    suite = out.parent / f"quickstart-{out.name}.yaml"
    suite.write_text(text)
    command = [sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(out)]
    if hostname:
        # A second host: a real run in its own UTS namespace, so it reports its own hostname.
        command = ["unshare", "--uts", "sh", "-c", f"hostname {hostname} && exec \"$@\"", "sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return next(out.glob("*.jsonl"))


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory, repo: Path) -> Path:
    folder = tmp_path_factory.mktemp("hosts")
    _run_quickstart(repo, folder / "a")
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--uts", "true"]).returncode != 0:
        pytest.skip("cannot create a UTS namespace here for a second host")
    _run_quickstart(repo, folder / "b", hostname="second-box")
    return folder


def _opened(playwright: Any, html: Path, width: int) -> tuple[Any, Any]:
    """Headless Chromium (the Debian one, no network) with `html` loaded at width x 900."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                          "--disable-background-networking"])
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    return browser, page


class Page:
    """What a browser saw while loading a page."""

    def __init__(self, html: Path) -> None:
        from playwright.sync_api import sync_playwright

        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                      "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: self.page_errors.append(str(e)))
            page.on("request", lambda r: self.requests.append(r.url))
            page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
            page.goto(html.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(500)
            self.charts = page.eval_on_selector_all(".chart", "els => els.map(e => e.querySelectorAll('.main-svg').length)")
            self.traces = page.evaluate("Array.from(document.querySelectorAll('.chart')).map(e => (e.data || []).length)")
            self.traces_by_chart = dict(page.evaluate(
                "Array.from(document.querySelectorAll('.chart')).map(e => [e.id, (e.data || []).length])"))
            self.images = page.eval_on_selector_all(
                "#images img", "els => els.map(e => [e.complete, e.naturalWidth, e.getAttribute('src').startsWith('data:image/png;base64,')])")
            self.injected = page.eval_on_selector_all("img[src='x']", "els => els.length")
            self.text = page.inner_text("body")
            self.html = page.content()
            browser.close()


def test_report_of_two_hosts_draws_every_chart_offline(two_hosts: Path, tmp_path: Path) -> None:
    info = build_report([two_hosts], tmp_path / "report.html")
    seen = Page(info.path)
    assert seen.console_errors == [] and seen.page_errors == []
    assert all(url.startswith(("file://", "data:")) for url in seen.requests), seen.requests
    assert len(seen.charts) >= 5 and all(count >= 1 for count in seen.charts)
    assert all(count >= 1 for count in seen.traces)  # every chart has data
    assert len(seen.images) == 8  # 4 cells on each of 2 hosts
    assert all(complete and width > 0 and is_data_uri for complete, width, is_data_uri in seen.images)
    assert "second-box" in seen.text and "Fastest:" in seen.text
    assert "By host" in seen.text and "seconds per image" in seen.text  # the two hosts are compared
    # The markup (apart from the plotly.js library text, whose URLs are strings for features
    # that are never drawn) references no other host, and the page forbids all requests.
    from plotly.offline import get_plotlyjs

    source = info.path.read_text()
    assert source.count(get_plotlyjs()) == 1
    markup = source.replace(get_plotlyjs(), "")
    for reference in ("http://", "https://", "//cdn", "@import"):
        assert reference not in markup
    assert "default-src 'none'" in markup


def test_names_and_prompts_with_html_show_as_text_and_never_run(repo: Path, tmp_path: Path) -> None:
    suite = tmp_path / "xss.yaml"
    suite.write_text(
        "name: xss\nmodels:\n"
        f"  '{PAYLOAD}': {{source: 'builtin:tiny-sd'}}\n"
        f"defaults: {{steps: 2, device: cpu, prompt: '{PAYLOAD} and <script>alert(2)</script>'}}\n"
        "matrix:\n  sampler: [euler, ddim]\nwarmup: 0\nrepeats: 3\n")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    results = next(out.glob("*.jsonl"))
    # and a host whose GPU name is hostile (as a crafted results file would carry it)
    hostile = tmp_path / "hostile.jsonl"
    lines = []
    for line in results.read_text().splitlines():
        record: dict[str, Any] = json.loads(line)
        record["run_id"] = "hostile-run"
        if record["type"] == "run":
            record["host"]["hostname"] = PAYLOAD
            record["host"]["gpus"] = [{"index": 0, "name": PAYLOAD}]
        if record["type"] == "generation":
            record.setdefault("runtime", {})["gpu_name"] = PAYLOAD
            record.pop("image", None)
        lines.append(json.dumps(record))
    hostile.write_text("\n".join(lines) + "\n")
    info = build_report([results, hostile], tmp_path / "xss.html")
    seen = Page(info.path)
    assert seen.dialogs == [] and seen.page_errors == []
    assert seen.injected == 0
    assert PAYLOAD in seen.text and "<script>alert(2)</script>" in seen.text
    assert "<img src=x" not in seen.html.split("<script>")[0]  # escaped wherever it appears as markup


def test_a_fleet_report_of_100000_generations_stays_small_and_opens(repo: Path, tmp_path: Path) -> None:
    """The fleet-scale figure of benchmarks/report_scale.py (two hosts, 200 settings, 100,000
    generations with per-step series): the report stays under 15 MiB and draws in the browser.
    How long it takes is the benchmark's business, not this test's."""
    sys.path.insert(0, str(repo / "benchmarks"))
    from report_scale import write_results

    assert write_results(tmp_path, 100_000) == 100_000
    info = build_report([tmp_path], tmp_path / "fleet.html")
    assert info.generations == 100_000 and info.cells == 200
    assert info.bytes < 15 * 2**20
    seen = Page(info.path)
    assert seen.console_errors == [] and seen.page_errors == []
    # Every chart with data is drawn; the quality chart has none (generated results carry no images).
    assert [drawn >= 1 for drawn in seen.charts] == [traces >= 1 for traces in seen.traces]
    assert seen.traces_by_chart["chart-quality"] == 0 and sum(t >= 1 for t in seen.traces) == len(seen.traces) - 1
    assert "By gpu" in seen.text and "Pareto" in seen.text


def test_the_h200_report_draws_one_bar_per_setting_with_its_own_figure(repo: Path, tmp_path: Path) -> None:
    """docs/gpu-runs mixes SDXL offload modes, FLUX attention backends and caches, quantizations:
    labels once cut at 48 characters put seven SDXL settings in one category, which plotly stacked
    (83 GiB for SDXL without offload). In the browser, every bar chart has one distinct category per
    setting, and each memory bar is its own setting's figure."""
    from diffbench.analysis.analyse import analyse
    from diffbench.contract.results import load_results

    info = build_report([repo / "docs" / "gpu-runs"], tmp_path / "gpu.html")
    analysis = analyse(load_results([repo / "docs" / "gpu-runs"]))
    summary = analysis.summary
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = _opened(playwright, info.path, 1280)
        drawn = page.evaluate("""['phases', 'memory'].map(id => {
            const chart = document.getElementById('chart-' + id);
            return {bars: chart.querySelectorAll('.bars .point').length,
                    traces: chart.data.map(t => ({y: t.y, x: t.x}))};
        })""")
        count_lines = """() => Array.from(document.querySelectorAll('.chart[id^="chart-steps-"]')).map(chart =>
            ({lines: chart.querySelectorAll('.scatterlayer .trace').length,
              legend: Array.from(chart.querySelectorAll('.legend .traces')).map(e => e.textContent)}))"""
        steps_before = page.evaluate(count_lines)
        page.click("#chart-steps-0 .legend .traces:has-text('first warm-ups') .legendtoggle")
        page.wait_for_function(f"({count_lines})()[0].lines != {steps_before[0]['lines']}", timeout=30_000)
        steps_after = page.evaluate(count_lines)
        browser.close()
    # 24 settings over small multiples by model: their measured lines, each chart's warm-ups behind
    # one legend entry that shows them all
    for chart in steps_before:
        assert [text for text in chart["legend"] if "warm-up" in text] == ["first warm-ups (dotted)"]
        assert len(chart["legend"]) - 1 <= 10
    # the measured lines (warm-ups shown where a chart has few settings) add up to every setting
    warm = analysis.steps[analysis.steps["warmup"].astype(bool)]
    assert sum(len(chart["legend"]) - 1 for chart in steps_before) == len(summary)
    # one click on the first chart's entry shows or hides all its warm-ups at once
    assert abs(steps_after[0]["lines"] - steps_before[0]["lines"]) >= 2 and not warm.empty
    settings = len(summary)
    assert settings >= 24  # 26 measured, two annotated error (a blank picture; a VAE config unlike SDXL's)
    for chart in drawn:
        for trace in chart["traces"]:
            assert len(trace["y"]) == len(set(trace["y"])) == settings  # one category per setting
    phases, memory = drawn
    assert memory["bars"] == settings
    [bars] = memory["traces"]
    assert bars["x"] == [round(v, 4) for v in summary["card_memory_gib"]]  # each bar is its setting's figure
    plain = summary.reset_index(drop=True)
    sdxl_none = plain[(plain["model"] == "sdxl") & (plain["offload"] == "none") & (plain["steps"] == 4)
                      & (plain["vae_tiling"].astype(str) == "False") & plain["vram_limit"].isna()]
    [row] = sdxl_none.index
    # 11.52 GiB allocated x1.16 + 0.60 GiB context: its own figure, not seven offload settings summed (83)
    assert 13.9 < bars["x"][row] < 14.0


def test_the_h200_report_opens_with_the_answer_per_card(repo: Path, tmp_path: Path) -> None:
    """Issue 36: the first screen (1400x900) answers time per card and fit, per model, before any
    repetition: the answer table's rows are in view, each with a time or a reason."""
    from playwright.sync_api import sync_playwright

    info = build_report([repo / "docs" / "gpu-runs"], tmp_path / "gpu.html")
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, info.path, 1400)
        first_section = page.evaluate("document.querySelector('section').id")
        rows = page.evaluate("""Array.from(document.querySelectorAll('#answer table.answer')[0].rows).slice(1)
            .map(r => ({top: r.getBoundingClientRect().bottom, cells: Array.from(r.cells).map(c => c.innerText)}))""")
        captions = page.eval_on_selector_all("#answer caption", "els => els.map(e => e.innerText)")
        browser.close()
    assert first_section == "answer"
    assert captions[0].startswith("sdxl at") and any(c.startswith("flux") for c in captions)
    assert len(rows) == 6 and all(row["top"] <= 900 for row in rows)  # every card of the first model on screen
    cards = {row["cells"][0].split(" ")[0] + " " + row["cells"][0].split(" ")[1] for row in rows}
    assert {"RTX 3060", "RTX 4090"} <= cards
    small = next(row for row in rows if row["cells"][0].startswith("RTX 3060"))
    assert float(small["cells"][1]) > 0 and small["cells"][2] in ("yes", "borderline")
    assert "offload" in small["cells"][3] or "quantize" in small["cells"][3]  # plain SDXL does not fit 12 GB


def test_the_h200_report_says_each_thing_once_in_charts_that_read(repo: Path, tmp_path: Path) -> None:
    """Issue 36: "too few repeats" at most once per compared axis; at most 15 warning lines, each
    kind explained once; no chart with more than 10 series or two of one colour; no picture box
    left empty; failure reasons end in whole words."""
    from playwright.sync_api import sync_playwright

    from diffbench.analysis.analyse import analyse
    from diffbench.contract.results import load_results

    info = build_report([repo / "docs" / "gpu-runs"], tmp_path / "gpu.html")
    axes = analyse(load_results([repo / "docs" / "gpu-runs"])).axes
    with sync_playwright() as playwright:
        browser, page = _opened(playwright, info.path, 1400)
        page.wait_for_timeout(500)
        text = page.inner_text("body")
        warning_lines = page.evaluate("document.querySelectorAll('#warnings ul.warnings > li').length")
        # a series is a legend group (a setting's points and its fit line share one) or a lone trace
        series = page.evaluate("""Array.from(document.querySelectorAll('.chart')).map(chart => {
            const groups = new Map();
            (chart.data || []).filter(t => t.showlegend !== false && t.legendgroup !== 'first warm-ups'
                                           && !/Pareto front|other settings/.test(t.name || ''))
                .forEach((t, i) => { const key = t.legendgroup || ('trace ' + i);
                    if (!groups.has(key)) groups.set(key, (t.marker && t.marker.color) || (t.line && t.line.color) || key); });
            return [chart.id, Array.from(groups.values())]; })""")
        empty_boxes = page.evaluate("document.querySelectorAll('#images .missing').length")
        reasons = page.eval_on_selector_all("#failures td:last-child", "els => els.map(e => e.innerText)")
        browser.close()
    assert 0 < text.count("too few repeats") <= len(axes), (text.count("too few repeats"), axes)
    assert 0 < warning_lines <= 15
    for chart_id, colours in series:
        assert len(colours) <= 10, (chart_id, len(colours))
        plain = [c for c in colours if isinstance(c, str)]  # per-point colour lists are one series' own
        assert len(plain) == len(set(plain)), (chart_id, plain)
    assert empty_boxes == 0 and "image not available" not in text
    assert "None of the" in text and "has its picture in these results" in text
    assert reasons and all(r.rstrip().endswith((".", "…", ")")) or len(r) < 400 for r in reasons), reasons
