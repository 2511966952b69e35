"""Statistics over pictures (pairedstats): checked against brute force, and by simulation with a
known answer (coverage, false positives, verdicts that follow their intervals) on six shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from diffbench.analysis.pairedstats import _signed_rank_cdf, centre, compare_paired


@pytest.mark.parametrize("n", range(1, 11))
def test_the_signed_rank_distribution_equals_enumerating_every_sign(n: int) -> None:
    sums = [sum(rank for rank, sign in zip(range(1, n + 1), signs) if sign)
            for signs in itertools.product((0, 1), repeat=n)]
    counts = np.bincount(sums, minlength=n * (n + 1) // 2 + 1)
    assert np.allclose(_signed_rank_cdf(n), np.cumsum(counts) / 2**n)


@pytest.mark.parametrize("n", [6, 8, 13, 20])
def test_the_centre_and_its_interval_equal_a_brute_force_computation(n: int) -> None:
    values = np.random.default_rng(n).normal(3.0, 2.0, n)
    walsh = sorted((values[i] + values[j]) / 2 for i in range(n) for j in range(i, n))
    found = centre(values)
    assert found.estimate == pytest.approx(float(np.median(walsh)))
    # the interval's ends are Walsh averages, k from each end, with k the largest count whose
    # two tails hold at most 5% of the 2^n equally likely sign patterns
    sums = np.array([sum(r for r, s in zip(range(1, n + 1), signs) if s)
                     for signs in itertools.product((0, 1), repeat=n)])
    k = max(c + 1 for c in range(-1, len(walsh)) if 2 * np.mean(sums <= c) <= 0.05) if n >= 6 else 1
    assert (found.low, found.high) == (pytest.approx(walsh[k - 1]), pytest.approx(walsh[-k]))
    assert found.confidence == pytest.approx(1 - 2 * np.mean(sums <= k - 1))


def _shape(name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Quality figures of one setting over `size` pictures, in six shapes."""
    if name == "normal":
        return rng.normal(30, 2, size)
    if name == "lognormal":
        return 30 * rng.lognormal(0, 0.2, size)
    if name == "bimodal":  # two kinds of prompt the model handles differently, 50/50
        return np.where(rng.random(size) < 0.5, rng.normal(24, 1, size), rng.normal(33, 1, size))
    if name == "outliers":  # 3% of pictures failed outright
        return np.where(rng.random(size) < 0.03, rng.normal(10, 2, size), rng.normal(30, 2, size))
    if name == "ties":  # figures rounded to whole points: many exact ties
        return np.round(rng.normal(30, 1.5, size))
    return 20 + rng.exponential(5, size)  # shifted exponential


SHAPES = ("normal", "lognormal", "bimodal", "outliers", "ties", "exponential")


@pytest.mark.parametrize("shape", SHAPES)
def test_paired_comparisons_cover_and_never_contradict_their_interval(shape: str) -> None:
    rng = np.random.default_rng(SHAPES.index(shape))
    replications, min_effect = 800, 0.5
    for n in (8, 24):
        covered = false_positive = 0
        confidence = centre(np.arange(n, dtype=float)).confidence
        for _ in range(replications):
            baseline = _shape(shape, rng, n)
            # same shape, same prompts: the pair differs by chance and a known shift of 0 points
            candidate = _shape(shape, rng, n)
            found = compare_paired(candidate, baseline, min_effect)
            assert found.low <= found.estimate <= found.high  # the point lies in its interval, always
            covered += found.low <= 0 <= found.high
            false_positive += found.verdict in {"higher", "lower"}
            # the verdict follows the interval
            if found.verdict == "higher":
                assert found.low >= min_effect and found.p_value < 0.05
            elif found.verdict == "lower":
                assert found.high <= -min_effect and found.p_value < 0.05
            elif found.verdict == "negligible":
                assert -min_effect < found.low and found.high < min_effect
        coverage = covered / replications
        # exact for continuous data; ties (rounded figures) make the interval conservative, never liberal
        assert coverage >= confidence - 0.015 - 2 * np.sqrt(confidence * (1 - confidence) / replications), \
            (shape, n, coverage)
        assert false_positive / replications <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / replications), (shape, n)


@pytest.mark.parametrize(("shift", "n", "expected"), [
    (-3.0, 24, "lower"),  # a large effect, well measured
    (3.0, 24, "higher"),
    (0.0, 400, "negligible"),  # no effect, measured so well that the whole interval is inside 0.5
    (0.0, 4, "too few to tell"),  # 4 pairs: a signed-rank test can never reach p < 0.05
])
def test_verdicts_on_known_effects(shift: float, n: int, expected: str) -> None:
    rng = np.random.default_rng(1)
    baseline = rng.normal(30, 2, n)
    candidate = baseline + shift + rng.normal(0, 0.5, n)
    found = compare_paired(candidate, baseline, 0.5)
    assert found.verdict == expected
    if expected == "too few to tell":
        assert found.more_needed == 2  # 6 pairs are the fewest that can reach p < 0.05


def test_power_at_one_point_of_clip_score_grows_with_the_pairs() -> None:
    rng = np.random.default_rng(5)
    detected = {}
    for n in (8, 24):
        hits = 0
        for _ in range(400):
            baseline = rng.normal(30, 2, n)
            candidate = baseline - 1.0 + rng.normal(0, 1.0, n)  # a real 1-point drop, pair noise of 1 point
            hits += compare_paired(candidate, baseline, 0.5).verdict in {"lower", "not resolved"}
        detected[n] = hits / 400
    assert detected[24] > detected[8] and detected[24] > 0.8


def test_several_seeds_of_a_prompt_are_clustered_so_the_interval_covers() -> None:
    """8 prompts x 3 seeds whose differences share each prompt's own effect (sd 1 point) beside
    seed noise (sd 0.5): taking the 24 pictures as independent pairs covers well under the stated
    confidence; clustering by prompt (the prompts are the independent unit) keeps it."""
    rng = np.random.default_rng(8)
    prompts = np.repeat(np.arange(8), 3)
    trials = 1500
    covered = covered_unclustered = 0
    stated = []
    for _ in range(trials):
        prompt_effect = rng.normal(0, 1.0, 8)[prompts]
        baseline = rng.normal(30, 2, 24)
        candidate = baseline + 0.5 + prompt_effect + rng.normal(0, 0.5, 24)
        found = compare_paired(candidate, baseline, 0.5, clusters=prompts)
        covered += found.low <= 0.5 <= found.high
        stated.append(found.confidence)
        plain = compare_paired(candidate, baseline, 0.5)
        covered_unclustered += plain.low <= 0.5 <= plain.high
    assert found.n == 8 and found.pairs == 24
    rate = covered / trials
    assert rate >= float(np.mean(stated)) - 0.02 - 2 * np.sqrt(0.95 * 0.05 / trials), rate
    assert covered_unclustered / trials < 0.9  # the test can fail: pictures of one prompt are not independent


def test_with_whole_point_ties_the_p_value_and_the_interval_agree() -> None:
    """Issue 37: scores rounded to whole points tie often; the signed-rank p is read from the same
    Walsh averages and null distribution as the interval, so p <= 1 - confidence exactly when the
    interval leaves 0 out (scipy's tie-corrected approximation disagreed in 5-44% of cases)."""
    from diffbench.analysis.pairedstats import signed_rank_p

    rng = np.random.default_rng(37)
    for _ in range(1500):
        n = int(rng.integers(6, 30))
        differences = np.round(rng.normal(rng.choice([0.0, 0.4, 1.0]), 1.2, n))
        found = centre(differences)
        p = signed_rank_p(differences)
        assert (p <= 1 - found.confidence + 1e-12) == (found.low > 0 or found.high < 0), (differences, p, found)
