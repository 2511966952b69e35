"""Comparisons along one axis (GPU, model, sampler, steps, ...), holding everything else equal.

Two groups are compared only when every other setting matches: results that differ in more
than the compared axis land in different contexts and are never paired silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..rules import axes
from ..stats import intervals as stats
from .metrics import METRICS
from .metrics import metric as metric_named
from .pairedstats import FEWEST_PAIRS, compare_ratio_pairs
from .tables import key_text, measured, setting_label, steps_text, varying
from .values import resolve_axis, resolve_value

TURN_COLUMNS = ("run_id", "round_group", "round")  # interleaved turns that were neighbours in time


@dataclass
class ComparisonRow:
    context: str
    value: str
    is_baseline: bool
    n: int
    median: float
    ci_low: float
    ci_high: float
    comparison: stats.Comparison | None = None
    ci_confidence: float = float("nan")  # what the median's interval achieves at this n (93.75% at n=5)


@dataclass
class ComparisonTable:
    axis: str
    metric: str
    rows: list[ComparisonRow] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)  # contexts with a single value of the axis

    def frame(self) -> pd.DataFrame:
        out = []
        for row in self.rows:
            c = row.comparison
            out.append({
                "context": row.context, self.axis: row.value, "baseline": row.is_baseline, "n": row.n,
                "median": row.median, "ci_low": row.ci_low, "ci_high": row.ci_high,
                "ci_confidence": row.ci_confidence,
                "ratio": c.ratio if c else 1.0 if row.is_baseline else np.nan,
                "ratio_low": c.ratio_low if c else np.nan, "ratio_high": c.ratio_high if c else np.nan,
                "ratio_confidence": c.confidence if c and not c.exact else np.nan,
                "p_value": c.p_value if c else np.nan,
                "verdict": verdict_word(c.verdict, self.metric) if c else "baseline",
            })
        return pd.DataFrame(out)


def context_groups(data: pd.DataFrame, columns: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """Rows grouped by equal values of `columns`, each group with its label."""
    if not columns:
        return [("all", data)]
    keyed = data.assign(**{f"_k_{c}": key_text(data[c]) for c in columns})
    groups = keyed.groupby([f"_k_{c}" for c in columns], sort=False)
    return [(setting_label(group.iloc[0], columns), group) for _, group in groups]


def verdict_word(verdict: str, metric: str) -> str:
    """'higher'/'lower' said as users think of the metric: slower/faster, more/less memory."""
    if verdict not in {"higher", "lower"}:
        return verdict
    declared = metric_named(metric)
    if declared.time_like:
        return "faster" if (verdict == "lower") == (declared.better == "lower") else "slower"
    return "more" if verdict == "higher" else "less"


def comparable_axes(frame: pd.DataFrame) -> list[str]:
    """Axes worth comparing: settings that vary in the measured data (hardware named 'gpu')."""
    names = {"hardware": "gpu", "hostname": "host"}
    found = [names.get(column, column) for column in varying(measured(frame))
             if column not in {"source", "runtime_device"}]
    # Prompts and seeds are what a quality figure is taken over, not settings to choose between: they
    # are compared only when nothing else varies (compare --by prompt still does it when asked).
    settings = [axis for axis in found if axis not in axes.INSTANCE_COLUMNS]
    # recipes are what a suite that names them was written to compare: that comparison comes first
    return sorted(settings or found, key=lambda axis: axis != "recipe")


def noisy_cells(warnings: pd.DataFrame | None) -> set[tuple[str, str]]:
    """(cell_id, hostname) of cells flagged noisy when they ran (stored warning lines)."""
    if warnings is None or warnings.empty or "kind" not in warnings:
        return set()
    flagged = warnings[warnings["kind"] == "noisy"]
    return {(str(c), str(h)) for c, h in zip(flagged["cell_id"], flagged["hostname"])}


def without_cells(frame: pd.DataFrame, cells: set[tuple[str, str]]) -> pd.DataFrame:
    """`frame` less the generations of `cells` ((cell_id, hostname) pairs): the one way the noisy-cell
    policy leaves cells out (report, recommend, estimate)."""
    if frame.empty or not cells:
        return frame
    keys = pd.Series(list(zip(frame["cell_id"].astype(str), frame["hostname"].astype(str))), index=frame.index)
    return frame[~keys.isin(cells)]


def leave_out_noisy(frame: pd.DataFrame, warnings: pd.DataFrame | None, allow_noisy: bool) -> tuple[pd.DataFrame, int]:
    """The noisy-cell policy for fits (estimate): `frame` less the cells flagged noisy when they
    ran, unless the user allows them, and how many cells were left out."""
    flagged = noisy_cells(warnings)
    if not flagged or allow_noisy:
        return frame, 0
    quiet = without_cells(frame, flagged)
    return quiet, int(frame.loc[frame.index.difference(quiet.index), "cell_id"].nunique())


@dataclass
class Prepared:
    """What every comparison of one frame shares, computed once: the measured rows (only the
    columns comparisons read), each setting column as grouping text, and the noisy rows."""

    data: pd.DataFrame
    keys: dict[str, np.ndarray]
    noisy_rows: np.ndarray
    unsteady_rows: np.ndarray  # rows of cells whose repeats depend on when they ran (stats/timedependence)
    # each row's cell's first line in the whole frame (its first warm-up: cells warm up in the suite's
    # order, whatever order their measured turns took): what picks a default baseline
    first_line: np.ndarray = field(default_factory=lambda: np.zeros(0))
    varying: dict[bytes, list[str]] = field(default_factory=dict)
    # (axis, rows) -> each context's label and row positions per value: every metric finite on
    # the same rows shares one grouping
    groupings: dict[tuple[str, bytes], list[tuple[str, dict[str, np.ndarray]]]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # columns as arrays, taken once (column())

    def column(self, name: str) -> np.ndarray:
        """One column of `data` as an array, taken from the frame once for every comparison."""
        if name not in self.arrays:
            self.arrays[name] = self.data[name].to_numpy()
        return self.arrays[name]


def prepare(frame: pd.DataFrame, noisy: set[tuple[str, str]] | None = None) -> Prepared:
    data = measured(frame)
    # (evaluations and step_s_median: the step-scaling fits share this frame)
    wanted = [c for c in (*axes.SETTING_COLUMNS, *METRICS, "cell_id", "hostname", "evaluations", "step_s_median",
                          *TURN_COLUMNS, "repeat") if c in data]
    data = data[list(dict.fromkeys(wanted))].reset_index(drop=True)
    unsteady = unsteady_rows(data)
    first = pd.Series(np.arange(len(frame)), index=frame.index).groupby(frame["cell_id"].astype(str).to_numpy()).min() \
        if not frame.empty and "cell_id" in frame else pd.Series(dtype=float)
    first_line = data["cell_id"].astype(str).map(first).to_numpy(dtype=float) if not data.empty else np.zeros(0)
    keys = {c: key_text(data[c]).to_numpy() for c in axes.SETTING_COLUMNS if c in data}
    flagged = (np.array([(str(c), str(h)) in noisy for c, h in zip(data["cell_id"], data["hostname"])], dtype=bool)
               if noisy and not data.empty else np.zeros(len(data), dtype=bool))
    return Prepared(data, keys, flagged, unsteady, first_line)


def unsteady_rows(data: pd.DataFrame) -> np.ndarray:
    """Rows of the cells (per host and run) whose seconds per image depend on the order they ran in."""
    from ..stats.timedependence import FEWEST, time_dependence

    found = np.zeros(len(data), dtype=bool)
    if data.empty or "s_per_image" not in data or "repeat" not in data:
        return found
    runs = data["run_id"] if "run_id" in data else pd.Series("", index=data.index)
    seconds, repeats = data["s_per_image"].to_numpy(dtype=float), data["repeat"].to_numpy()
    for rows in pd.Series(np.arange(len(data))).groupby([data["cell_id"], data["hostname"], runs]).indices.values():
        if len(rows) >= FEWEST:
            in_order = rows[np.argsort(repeats[rows], kind="stable")]
            found[rows] = time_dependence(seconds[in_order]) is not None
    return found


def _varying(prep: Prepared, mask: np.ndarray) -> list[str]:
    """frames.varying on the prepared keys: setting columns with more than one value among `mask`
    (remembered per mask: most metrics are finite on the same rows)."""
    remembered = prep.varying.get(mask.tobytes())
    if remembered is not None:
        return list(remembered)
    found = [c for c, k in prep.keys.items() if len(pd.unique(k[mask])) > 1]
    if "source" in found and "model" in prep.keys:
        pairs = pd.DataFrame({"model": prep.keys["model"][mask], "source": prep.keys["source"][mask]})
        if pairs.groupby("model")["source"].nunique().max() <= 1:
            found.remove("source")
    prep.varying[mask.tobytes()] = list(found)
    return found


def _grouping(prep: Prepared, column: str, mask: np.ndarray) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The rows of `mask` grouped by context (every other varying setting) and by value of
    `column`: [(context label, {value: row positions})], in order of first appearance."""
    remembered = prep.groupings.get((column, mask.tobytes()))
    if remembered is not None:
        return remembered
    data = prep.data
    # Comparing GPUs means comparing hosts (and the reverse): neither may split the context.
    machine = {"hardware", "hostname", "runtime_device"}
    context_columns = [c for c in _varying(prep, mask) if c != column and not (column in machine and c in machine)]
    rows_kept = np.flatnonzero(mask)
    if column == "recipe":  # a recipe is a whole configuration: what its recipes set is not held equal
        context_columns = [c for c in context_columns if c not in _recipe_columns(prep, rows_kept)]
    value_keys = prep.keys[column][rows_kept] if column in prep.keys else key_text(data[column]).to_numpy()[rows_kept]
    if column == "steps":
        value_keys = np.array([steps_text(v) for v in value_keys], dtype=object)
    context_keys = [prep.keys[c][rows_kept] for c in context_columns]
    # One grouping for every (context, value); then plain arrays, never a pandas slice per group.
    grouper = pd.MultiIndex.from_arrays([*context_keys, value_keys]) if context_keys else value_keys
    positions = pd.Series(rows_kept).groupby(grouper, sort=False).indices
    by_context: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
    for key, local in positions.items():
        key = key if isinstance(key, tuple) else (key,)
        by_context.setdefault(key[:-1], {})[str(key[-1])] = rows_kept[local]
    raw = {c: data[c].to_numpy() for c in context_columns}  # labels from arrays, not a row lookup per context
    grouped = []
    for rows_by_value in by_context.values():
        first = next(iter(rows_by_value.values()))[0]
        context = setting_label({c: raw[c][first] for c in context_columns}, context_columns) \
            if context_columns else "all"
        grouped.append((context, rows_by_value))
    prep.groupings[(column, mask.tobytes())] = grouped
    return grouped


def _recipe_columns(prep: Prepared, rows: np.ndarray) -> set[str]:
    """Setting columns whose values differ between recipes (each recipe's own settings): the rest
    (prompt, seed, the machine, what the matrix crossed every recipe with) pairs them."""
    recipes = prep.keys["recipe"][rows]
    named = recipes != "-"
    found = set()
    for column, keys in prep.keys.items():
        per_recipe = {}
        for recipe in pd.unique(recipes[named]):
            per_recipe[recipe] = frozenset(pd.unique(keys[rows][named & (recipes == recipe)]))
        if len(set(per_recipe.values())) > 1:
            found.add(column)
    return found


def steps_contexts(prep: Prepared, mask: np.ndarray) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The rows of `mask` by context (every other varying setting) and step count."""
    return _grouping(prep, "steps", mask)


def compare(frame: pd.DataFrame, by: str, baseline: str | None = None, metric: str = "s_per_image",
            min_effect: float = stats.DEFAULT_MIN_EFFECT, noisy: set[tuple[str, str]] | None = None,
            allow_noisy: bool = False, prepared: Prepared | None = None) -> ComparisonTable:
    """Compare every value of `by` with the baseline value, within each context of equal settings.

    A comparison that involves a cell flagged noisy (see advice.check_noise) gets the verdict
    "noisy" instead of one, unless `allow_noisy`; "unsteady" likewise where a cell's repeats depend
    on when they ran and the two were not measured as interleaved pairs. `prepared` (from `prepare`) shares the work
    of many comparisons of one frame."""
    metric_named(metric)  # an unknown name is a clear error here, not a KeyError later
    prep = prepared if prepared is not None else prepare(frame, noisy)
    data = prep.data
    table = ComparisonTable(by, metric)
    if data.empty:
        return table
    column = resolve_axis(by, data)  # an unknown axis is an error, never an empty comparison
    if baseline is not None:
        [baseline] = resolve_value(by, baseline, data, unique=True)
        if column == "steps":
            baseline = steps_text(baseline)
    counted = metric_named(metric).counted
    metric_values = data[metric].to_numpy(dtype=float)
    mask = np.isfinite(metric_values)
    if not mask.any():  # e.g. energy where there was no telemetry
        return table
    for context, rows_by_value in _grouping(prep, column, mask):
        values = list(rows_by_value)
        if len(values) < 2:
            table.unpaired.append(f"{context}: only {by}={values[0]}")
            continue
        if baseline is not None and baseline not in values:
            table.unpaired.append(f"{context}: no {by}={baseline} to compare with")
            continue
        # by default the value whose cells came first in the results (the suite's order), the same in every context
        base = baseline if baseline is not None else \
            min(values, key=lambda v: float(np.min(prep.first_line[rows_by_value[v]])) if prep.first_line.size else 0.0)
        # each group sorted once (finite already: the mask), then compared with the baseline's
        base_values = np.sort(metric_values[rows_by_value[base]])
        base_noisy = bool(prep.noisy_rows[rows_by_value[base]].any())
        for value in [base] + [v for v in values if v != base]:
            sample = base_values if value == base else np.sort(metric_values[rows_by_value[value]])
            low, high, achieved = stats.sorted_median_ci(sample)
            comparison = None
            if value != base:
                pairs = turn_pairs(prep, rows_by_value[value], rows_by_value[base])
                comparison = judge(sample, base_values, min_effect, counted,
                                   None if pairs is None else (metric_values[pairs[0]], metric_values[pairs[1]]),
                                   noisy=base_noisy or bool(prep.noisy_rows[rows_by_value[value]].any()),
                                   unsteady=bool(prep.unsteady_rows[rows_by_value[base]].any()
                                                 or prep.unsteady_rows[rows_by_value[value]].any()),
                                   allow_noisy=allow_noisy, steady_within=metric_named(metric).steady_within)
            table.rows.append(ComparisonRow(context, value, value == base, len(sample), stats.sorted_median(sample),
                                            low, high, comparison, achieved))
    return table


def judge(candidate: np.ndarray, baseline: np.ndarray, min_effect: float, counted: bool,
          pairs: tuple[np.ndarray, np.ndarray] | None, noisy: bool, unsteady: bool,
          allow_noisy: bool, steady_within: float = 0.0) -> stats.Comparison:
    """One value against its baseline: the groups sorted, `pairs` the values of interleaved turns that
    ran side by side (or None). A count is exact; so is a figure that came out the same in every
    generation of both settings (an allocator's peak bytes), once each was seen at least twice.
    Otherwise pairs are compared as pairs, else the groups as independent; a comparison with a cell
    measured while other work competed is "noisy", and an unpaired one with a cell whose repeats
    depend on when they ran "unsteady", neither judged unless `allow_noisy`."""
    constant = min(candidate.size, baseline.size) >= 2
    exact = stats.compare_exact(candidate, baseline, min_effect, steady_within) if counted or constant else None
    if exact is not None:
        return exact  # a count (bytes of weights) is not disturbed by other work on the machine
    comparison = compare_ratio_pairs(pairs[0], pairs[1], min_effect) if pairs is not None \
        else stats.compare_sorted(candidate, baseline, min_effect=min_effect)
    if allow_noisy:
        return comparison
    if noisy:
        return dataclasses.replace(comparison, verdict="noisy")
    # a drift or clock states bias two groups measured at different times; interleaved pairs cancel them
    if unsteady and not comparison.paired and comparison.verdict not in {"too few to tell", "negligible"}:
        return dataclasses.replace(comparison, verdict="unsteady")
    return comparison


def turn_pairs(prep: Prepared, candidate: np.ndarray, baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows of the two groups that took the same round of one interleaved run (neighbours in time),
    as two aligned arrays; None unless there are enough (pairedstats.FEWEST_PAIRS) and each group
    has at most one row per round (several hosts or prompts per round are not one pair)."""
    data = prep.data
    if "round" not in data or "round_group" not in data:
        return None
    keys = {}
    for name, rows in (("candidate", candidate), ("baseline", baseline)):
        rounds = prep.column("round")[rows]
        if pd.isna(rounds).any():
            return None
        key = [f"{r}|{g}|{int(n)}" for r, g, n in zip(prep.column("run_id")[rows],
                                                       prep.column("round_group")[rows], rounds)]
        if len(set(key)) != len(key):
            return None
        keys[name] = dict(zip(key, rows))
    common = [k for k in keys["candidate"] if k in keys["baseline"]]
    if len(common) < FEWEST_PAIRS:
        return None
    return (np.array([keys["candidate"][k] for k in common]), np.array([keys["baseline"][k] for k in common]))


def describe(row: ComparisonRow, baseline: str, metric: str) -> str:
    """One sentence: 'euler is 1.23x faster than ddim (95% CI 1.10-1.31, p=0.002).'"""
    c = row.comparison
    if c is None:
        return f"{row.value} is the baseline"
    declared = metric_named(metric)
    name = declared.title
    paired = f", {c.n_candidate} interleaved pairs" if c.paired else ""
    interval = f"{100 * c.confidence:.0f}% CI {c.ratio_low:.3f}-{c.ratio_high:.3f}{paired}"
    if c.exact:  # counted, the same in every generation: no interval, no test
        if c.verdict == "negligible":
            return f"{row.value} vs {baseline}: a difference under the minimum effect in {name} (ratio {c.ratio:.3f})"
        factor = c.ratio if c.ratio >= 1 else 1 / c.ratio
        within = f" within {100 * declared.steady_within:g}%" if declared.steady_within else ""
        how = "counted: the same in every generation" if declared.counted else \
            f"the same{within} in each of {c.n_candidate} and {c.n_baseline} generations"
        return f"{row.value} has {factor:.2f}x {'more' if c.ratio > 1 else 'less'} {name} than {baseline} ({how})"
    if c.verdict == "noisy":
        return (f"{row.value} vs {baseline}: not judged: measured while other work competed (flagged noisy); "
                f"rerun on a quiet machine, or pass --allow-noisy (ratio {c.ratio:.3f}, {interval})")
    if c.verdict == "unsteady":
        return (f"{row.value} vs {baseline}: not judged: the repeats of one of them drifted or came in clock states, "
                f"and they ran at different times (not interleaved), so time and setting are mixed; run them in one "
                f"suite with order: interleaved, or pass --allow-noisy (ratio {c.ratio:.3f}, {interval})")
    if c.verdict == "too few to tell":
        return (f"{row.value} vs {baseline}: too few repeats to tell ({c.n_candidate} and {c.n_baseline}; a rank "
                f"test cannot reach p<0.05 with so few): {c.more_needed} more each needed (ratio {c.ratio:.3f}, "
                f"{interval})")
    if c.verdict == "negligible":
        return (f"{row.value} vs {baseline}: any difference in {name} is under the minimum effect: the whole "
                f"interval is within it (ratio {c.ratio:.3f}, {interval}, {stats.format_p(c.p_value)})")
    if c.verdict == "not significant":
        return (f"{row.value} vs {baseline}: no significant difference in {name} (ratio {c.ratio:.3f}, {interval}, "
                f"{stats.format_p(c.p_value)})")
    factor, low, high = (c.ratio, c.ratio_low, c.ratio_high) if c.ratio >= 1 else (
        1 / c.ratio, 1 / c.ratio_high, 1 / c.ratio_low)  # the factor and its interval on the same side
    if declared.time_like:  # say faster or slower
        faster = c.ratio < 1 if declared.better == "lower" else c.ratio > 1
        word = "faster" if faster else "slower"
    else:
        word = "more" if c.ratio > 1 else "less"
    stated = f"{100 * c.confidence:.0f}% CI {low:.3f}-{high:.3f} of the factor, {stats.format_p(c.p_value)}{paired}"
    if c.verdict == "not resolved":
        return (f"{row.value} vs {baseline}: a real difference ({factor:.2f}x {word} in {name}), but its interval "
                f"reaches across the minimum effect ({stated}): about {c.more_needed} more repeats of "
                f"{row.value} and {c.more_needed_baseline} of {baseline} would settle whether it matters")
    return f"{row.value} is {factor:.2f}x {word} than {baseline} in {name} ({stated})"


MOST_SENTENCES_PER_VALUE = 8  # beyond this many contexts, a value's sentences are summed up in one


def shown_value(axis: str, value: str) -> str:
    """A compared value as a sentence names it: 'vae_tiling=True', 'vram_limit=none', not a bare
    'True' or '-' that leaves the reader to guess the axis; others as they are ('euler', '8 steps')."""
    if value in ("-", "None", "none") and axis not in ("model", "recipe"):
        return f"{axis}=none"
    if axis in axes.NAMED_IN_LABELS or value in ("True", "False"):
        return f"{axis}={value}"
    return value


def headline(table: ComparisonTable, judged_only: bool = False) -> list[str]:
    """The sentences of a comparison, per context; a value compared in many contexts (24 prompts)
    gets one sentence that counts its verdicts and gives the range of its factors (the table keeps
    every context). `judged_only` leaves out the comparisons too few repeats left unjudged (which
    `unjudged` then says once for the whole axis)."""
    lines = []
    rows = [dataclasses.replace(r, value=shown_value(table.axis, r.value)) for r in table.rows]
    base_by_context: dict[str, str] = {r.context: r.value for r in rows if r.is_baseline}
    compared = [r for r in rows if not r.is_baseline and not (judged_only and _too_few(r))]
    many = {value for value in {r.value for r in compared}
            if sum(r.value == value for r in compared) > MOST_SENTENCES_PER_VALUE}
    summed: set[str] = set()
    for row in compared:
        if row.value in many:
            if row.value not in summed:
                summed.add(row.value)
                lines.append(_summed_up([r for r in compared if r.value == row.value], base_by_context, table.metric))
            continue
        prefix = f"[{row.context}] " if row.context != "all" else ""
        lines.append(prefix + describe(row, base_by_context[row.context], table.metric))
    return lines


def _too_few(row: ComparisonRow) -> bool:
    return row.comparison is not None and row.comparison.verdict == "too few to tell"


@dataclass(frozen=True)
class Unjudged:
    """The comparisons of one axis that too few repeats left unjudged, said once."""

    axis: str
    comparisons: int
    repeats: tuple[int, int]  # the fewest and most repeats per setting among them
    more_needed: int  # repeats to add to each setting, at most, for a rank test to reach p < 0.05

    def sentence(self) -> str:
        low, high = self.repeats
        per = f"{low}" if low == high else f"{low}-{high}"
        return (f"{self.comparisons} comparison(s) by {self.axis} not judged: too few repeats to tell ({per} per "
                f"setting; {self.more_needed} more each would let a rank test reach p<0.05; repeats: auto decides "
                f"how many). Their ratios are in the tables, without a verdict.")


def unjudged(axis: str, tables: list[ComparisonTable]) -> Unjudged | None:
    """What too few repeats left unjudged among an axis's comparisons (every metric), or None."""
    rows = [r for t in tables for r in t.rows if _too_few(r) and r.comparison is not None]
    if not rows:
        return None
    counts = [n for r in rows if r.comparison for n in (r.comparison.n_candidate, r.comparison.n_baseline)]
    return Unjudged(axis, len(rows), (min(counts), max(counts)),
                    max(r.comparison.more_needed for r in rows if r.comparison))


def _summed_up(rows: list[ComparisonRow], base_by_context: dict[str, str], metric: str) -> str:
    """'standard vs turbo in 24 contexts: slower in 24 (factors 2.05-5.06, median 4.11) ...'."""
    verdicts: dict[str, int] = {}
    for row in rows:
        word = verdict_word(row.comparison.verdict, metric) if row.comparison else "baseline"
        verdicts[word] = verdicts.get(word, 0) + 1
    ratios = np.array([r.comparison.ratio for r in rows if r.comparison and r.comparison.ratio == r.comparison.ratio])
    baselines = sorted({base_by_context[r.context] for r in rows})
    counted = ", ".join(f"{word} in {count}" for word, count in sorted(verdicts.items(), key=lambda kv: -kv[1]))
    spread = (f"; ratio to the baseline {ratios.min():.3g}-{ratios.max():.3g}, median {np.median(ratios):.3g}"
              if ratios.size else "")
    return (f"{rows[0].value} vs {', '.join(baselines)} in {len(rows)} contexts of other settings: {counted} "
            f"({metric_named(metric).title}{spread}; every context in the table)")


@dataclass
class Gate:
    """What a regression gate found: the values worse than their baselines beyond the threshold."""

    failed: list[str]
    unjudged: list[str]  # noisy or too few repeats: no verdict, so neither passed nor failed
    judged: int


def regressions(table: ComparisonTable, threshold: float) -> Gate:
    """Values significantly worse than their baseline (rank test at p < 0.05) whose whole interval
    lies beyond `threshold` in the worse direction (slower for time, more for memory)."""
    declared = metric_named(table.metric)
    base_by_context = {r.context: r.value for r in table.rows if r.is_baseline}
    failed, unjudged, judged = [], [], 0
    for row in table.rows:
        c = row.comparison
        if c is None:
            continue
        where = f"[{row.context}] " if row.context != "all" else ""
        if c.verdict in {"noisy", "unsteady", "too few to tell"}:
            unjudged.append(where + describe(row, base_by_context[row.context], table.metric))
            continue
        judged += 1
        worse_low, worse_high = (c.ratio_low, c.ratio_high) if declared.better == "lower" else (
            1 / c.ratio_high, 1 / c.ratio_low)
        significant = c.exact or (c.p_value == c.p_value and c.p_value < stats.DEFAULT_ALPHA)
        if significant and worse_low > 1 + threshold:
            failed.append(where + describe(row, base_by_context[row.context], table.metric))
    return Gate(failed, unjudged, judged)
