"""Recipes: whole configurations (Turbo at 2 steps without guidance, standard at 8 with it)
compared as wholes on the same prompts and seeds, on real tiny pipelines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from diffbench.analysis.compare import comparable_axes, compare
from diffbench.analysis.tables import with_metrics
from diffbench.contract.results import load_results
from diffbench.execute.runner import run_suite
from diffbench.intake.plan import expand
from diffbench.intake.shipped import resolve_suite
from diffbench.intake.suite import load_suite
from diffbench.intake.yamlsource import SuiteError

TINY = resolve_suite("turbo-vs-standard-tiny")


def test_recipes_cross_the_matrix_and_their_values_win(tmp_path: Path) -> None:
    cells = expand(load_suite(TINY))
    prompts = load_suite(TINY).matrix["prompt"]  # the shipped prompt set: quality over 24 prompts
    assert len(prompts) == 24 and len(cells) == 48
    assert [(c.settings["recipe"], c.settings["steps"], c.settings["prompt"]) for c in cells[:4]] == [
        ("turbo", 2, prompts[0]), ("standard", 8, prompts[0]), ("turbo", 2, prompts[1]), ("standard", 8, prompts[1])]
    assert {c.settings["guidance_scale"] for c in cells if c.settings["recipe"] == "turbo"} == {0.0}
    assert {c.settings["sampler"] for c in cells if c.settings["recipe"] == "turbo"} == {"euler_a"}  # canonical
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels:\n  t: {source: 'builtin:tiny-sd'}\nmatrix:\n  steps: [2, 3]\n"
                     "recipes:\n  fast: {model: t, steps: 1}\n")
    assert {c.settings["steps"] for c in expand(load_suite(suite))} == {1}  # the recipe's value wins


@pytest.mark.parametrize(("recipe", "message"), [
    ("{model: t, steps: [1, 2]}", "a recipe holds one value per axis, not a list"),
    ("{model: t, stepz: 2}", "unknown axis 'stepz'"),
    ("{model: t, steps: 0}", "given 0; allowed: a number >= 1"),
    ("{model: t, recipe: other}", "not the recipe's own name"),
])
def test_recipe_mistakes_are_one_line_errors_with_their_line(tmp_path: Path, recipe: str, message: str) -> None:
    suite = tmp_path / "bad.yaml"
    suite.write_text(f"name: bad\nmodels:\n  t: {{source: 'builtin:tiny-sd'}}\nrecipes:\n  fast: {recipe}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{suite}:5:"), str(caught.value)


def test_turbo_and_standard_are_compared_as_wholes(tmp_path: Path) -> None:
    # the shipped twin on one prompt and two seeds (its 24 prompts and CLIP scores: test_clipscore.py)
    text = TINY.read_text().replace("prompts: builtin:varied", "# prompts").replace("quality:\n  clip: builtin:tiny-clip\n", "")
    text = text.replace("  seed: [1]", "  seed: [1, 2]\n  prompt: [a lighthouse on a cliff at dusk]")
    assert text.count("seed: [1, 2]") == 1
    suite = tmp_path / "twin.yaml"
    suite.write_text(text)
    outcome = run_suite(load_suite(suite), tmp_path / "out")
    frame = with_metrics(load_results([outcome.results_path]).generations)
    assert comparable_axes(frame)[0] == "recipe"  # what the suite was written to compare comes first
    table = compare(frame, "recipe", baseline="turbo")
    rows = [r for r in table.rows if not r.is_baseline]
    assert len(rows) == 2 and {r.context for r in rows} == {"seed=1", "seed=2"}  # paired on seed, nothing else
    # 8 steps with CFG cost more than 2 without: about 2-3x here when quiet; beside two CPU burners
    # the ratio of two busy cells swings, so only its direction is asserted (a margin the noise keeps)
    assert all(r.comparison is not None and r.comparison.ratio > 1.0 for r in rows)
    by_model = subprocess.run([sys.executable, "-m", "diffbench.cli", "compare", str(outcome.results_path),
                               "--by", "steps"], capture_output=True, text=True, timeout=120)
    assert by_model.returncode == 3 and "name recipes (turbo, standard), compared as wholes: --by recipe" in \
        by_model.stderr
