"""Time against quality across settings that draw different pictures (Turbo vs standard).

Quality here is the CLIP score (measure/clipscore.py): reference-free, so it means the same
across models, step counts and recipes. A setting is summarised over its pictures (one per
prompt and seed): its time per image as the median of its cells' medians, its CLIP score as the
Hodges-Lehmann centre, each with an interval. Two settings are compared on the same prompts and
seeds (pairedstats): the CLIP difference in points and the time ratio, with intervals and the
same verdict rules as any comparison. Settings are grouped by everything else that varies (the
GPU above all), never pooled across it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..rules import axes
from ..stats import intervals as stats
from .pairedstats import Centre, PairedDifference, centre, compare_paired
from .tables import key_text, setting_label, varying


def picture_axes() -> tuple[str, ...]:
    """What a quality statistic is taken over: the picture asked for (prompt, seed, inputs), not a
    setting to choose."""
    return (*axes.INSTANCE_COLUMNS, "init_image", "mask_image")


QUALITY_MIN_EFFECT = 0.5  # CLIP points: a difference under half a point is not worth a headline
MACHINE = ("hostname", "hardware", "runtime_device")


@dataclass(frozen=True)
class Scores:
    """Cells with a CLIP score: the summary's rows (one per cell and host) with `clip_score`."""

    cells: pd.DataFrame
    checkpoint: str | None
    notes: list[str]

    @property
    def empty(self) -> bool:
        return bool(self.cells.empty)

    def by_cell(self) -> dict[tuple[str, str], float]:
        """(cell_id, hostname) -> CLIP score."""
        if self.cells.empty:
            return {}
        return {(str(c), str(h)): float(v) for c, h, v in
                zip(self.cells["cell_id"], self.cells["hostname"], self.cells["clip_score"])}


def scored_cells(summary: pd.DataFrame, quality: pd.DataFrame | None) -> Scores:
    """The summary's cells joined with their CLIP scores. Scores of several checkpoints are never
    mixed: the checkpoint that scored the most cells is used, and the others are named."""
    if quality is None or quality.empty or summary.empty:
        return Scores(pd.DataFrame(), None, [])
    clip = quality[quality["metric"] == "clip_score"]
    if clip.empty:
        return Scores(pd.DataFrame(), None, [])
    counts = clip["checkpoint"].value_counts()
    checkpoint = str(counts.index[0])
    notes = [f"CLIP scores of {name} ({count} pictures) are left out: one checkpoint is shown, {checkpoint}"
             for name, count in counts.iloc[1:].items()]
    chosen = clip[clip["checkpoint"] == checkpoint]
    # a cell scored in two runs (a resumed file) keeps its last score; scores that disagree are said
    # (the same picture and checkpoint give the same score: two values mean another picture or a file edited)
    spread = chosen.groupby(["cell_id", "hostname"])["value"].agg(["nunique", "min", "max", "size"])
    for (cell, host), row in spread[spread["nunique"] > 1].iterrows():
        notes.append(f"cell {cell} on {host} has {int(row['size'])} CLIP scores of {checkpoint} that differ "
                     f"({row['min']:.2f} to {row['max']:.2f}): the last one written is used")
    chosen = chosen.drop_duplicates(["cell_id", "hostname"], keep="last")[["cell_id", "hostname", "value"]]
    cells = summary.merge(chosen.rename(columns={"value": "clip_score"}), on=["cell_id", "hostname"], how="inner")
    return Scores(cells, checkpoint, notes)


@dataclass(frozen=True)
class TradeoffPoint:
    """One setting over its pictures."""

    label: str
    group: str  # what the setting shares with the points it is drawn with (the GPU, ...): "" for all
    seconds: float  # median of its cells' median seconds per image
    seconds_low: float
    seconds_high: float
    seconds_confidence: float
    clip: Centre
    memory_gib: float  # what a card must hold (frames.card_memory): the median over its pictures
    memory_low: float
    memory_high: float
    memory_confidence: float
    memory_kind: str
    pareto: bool = False


def _setting_columns(cells: pd.DataFrame) -> list[str]:
    return [c for c in varying(cells) if c not in picture_axes()]


def tradeoff_points(scores: Scores) -> list[TradeoffPoint]:
    """Every setting with its time and CLIP score; `pareto` marks those no other setting on the
    same machine beats on both (judged on the estimates)."""
    if scores.empty:
        return []
    cells = scores.cells
    columns = _setting_columns(cells)
    machine = [c for c in columns if c in MACHINE]
    knobs = [c for c in columns if c not in MACHINE]
    points: list[TradeoffPoint] = []
    keyed = cells.assign(**{f"_k_{c}": key_text(cells[c]) for c in columns})
    groups = keyed.groupby([f"_k_{c}" for c in columns], sort=False) if columns else [((), keyed)]
    for _, rows in groups:
        first = rows.iloc[0]
        seconds = rows["s_per_image"].to_numpy(dtype=float)
        low, high, achieved = stats.median_ci(seconds)
        memory = rows["card_memory_gib"].to_numpy(dtype=float)
        memory = memory[np.isfinite(memory)]
        memory_low, memory_high, memory_achieved = stats.median_ci(memory) if memory.size else (float("nan"),) * 3
        points.append(TradeoffPoint(setting_label(first, knobs) if knobs else "all",
                                    setting_label(first, machine) if machine else "", stats.median(seconds),
                                    low, high, achieved, centre(rows["clip_score"].to_numpy(dtype=float)),
                                    stats.median(memory) if memory.size else float("nan"), memory_low, memory_high,
                                    memory_achieved, str(first.get("card_memory_kind") or "")))
    out: list[TradeoffPoint] = []
    for group in dict.fromkeys(p.group for p in points):
        members = [p for p in points if p.group == group]
        front = stats.pareto_front(np.array([[p.seconds, -p.clip.estimate] for p in members]))
        out.extend(replace(p, pareto=bool(keep)) for p, keep in zip(members, front))
    return out


@dataclass(frozen=True)
class PairedTradeoff:
    """A candidate setting against a baseline on the same prompts and seeds."""

    context: str
    candidate: str
    baseline: str
    quality: PairedDifference  # CLIP points, candidate - baseline
    baseline_clip: float  # the baseline's mean CLIP score over the pairs
    time_ratio: Centre | None  # candidate / baseline seconds per image (exp of the paired log ratios)
    memory_ratio: Centre | None = None  # candidate / baseline memory a card must hold, likewise
    noisy_cells: int = 0  # of the pairs' cells, those flagged noisy: their times are not the machine's alone


def paired_tradeoffs(scores: Scores, axis: str, baseline: str | None = None,
                     min_effect: float = QUALITY_MIN_EFFECT,
                     noisy: set[tuple[str, str]] | None = None) -> list[PairedTradeoff]:
    """Each value of `axis` against the baseline (given, else the slowest: the standard recipe),
    paired on prompt and seed within each context of everything else that varies; for recipes,
    what the recipes set is the recipe itself and not held equal."""
    if scores.empty or axis not in scores.cells:
        return []
    cells = scores.cells
    columns = _setting_columns(cells)
    if axis == "recipe":
        columns = [c for c in columns if c in MACHINE or not _set_by_recipes(cells, c)]
    context_columns = [c for c in columns if c != axis]
    pair_columns = [c for c in picture_axes() if c in cells]
    keyed = cells.assign(_value=key_text(cells[axis]),
                         _pair=_joined(cells, pair_columns),
                         _prompt=_joined(cells, [c for c in pair_columns if c != "seed"]),
                         _context=_joined(cells, context_columns))
    out: list[PairedTradeoff] = []
    for _, rows in keyed.groupby("_context", sort=False):
        times = rows.groupby("_value", sort=False)["s_per_image"].median()
        if len(times) < 2:
            continue
        base = baseline if baseline is not None and baseline in times.index else str(times.idxmax())
        by_value = {value: group.drop_duplicates("_pair").set_index("_pair")
                    for value, group in rows.groupby("_value", sort=False)}
        context = setting_label(rows.iloc[0], context_columns) if context_columns else "all"
        for value, group in by_value.items():
            if value == base:
                continue
            shared = group.index.intersection(by_value[base].index)
            if shared.empty:
                continue
            a, b = group.loc[shared], by_value[base].loc[shared]
            quality = compare_paired(a["clip_score"].to_numpy(dtype=float), b["clip_score"].to_numpy(dtype=float),
                                     min_effect, clusters=a["_prompt"].to_numpy())
            flagged = sum((str(c), str(h)) in (noisy or set()) for frame in (a, b)
                          for c, h in zip(frame["cell_id"], frame["hostname"]))
            out.append(PairedTradeoff(context, str(value), str(base), quality, float(b["clip_score"].mean()),
                                      _paired_ratio(a["s_per_image"], b["s_per_image"]),
                                      _paired_ratio(a["card_memory_gib"], b["card_memory_gib"]), flagged))
    return out


def _paired_ratio(candidate: pd.Series, baseline: pd.Series) -> Centre | None:
    """The centre of the per-pair ratios (on the log scale) and its interval, or None without pairs."""
    ratios = candidate.to_numpy(dtype=float) / baseline.to_numpy(dtype=float)
    logs = np.log(ratios[np.isfinite(ratios) & (ratios > 0)])
    if not logs.size:
        return None
    found = centre(logs)
    return Centre(math.exp(found.estimate), math.exp(found.low), math.exp(found.high), found.confidence, found.n)


def _joined(cells: pd.DataFrame, columns: list[str]) -> pd.Series:
    if not columns:
        return pd.Series("all", index=cells.index)
    keys = [key_text(cells[c]) for c in columns]
    joined = keys[0]
    for key in keys[1:]:
        joined = joined + "\x1f" + key
    return joined


def _set_by_recipes(cells: pd.DataFrame, column: str) -> bool:
    """Whether recipes differ in `column` (it is part of what a recipe is)."""
    named = cells[key_text(cells["recipe"]) != "-"]
    per_recipe = {recipe: frozenset(key_text(rows[column])) for recipe, rows in named.groupby(key_text(named["recipe"]))}
    return len(set(per_recipe.values())) > 1


def _percent_of(baseline: float, points: float) -> str:
    return f"{100 * (baseline + points) / baseline:.0f}%" if baseline > 0 else "n/a"


def _fraction(ratio: float) -> str:
    """A time ratio as people say it: '1/7.9 of the time' below 1, '1.3x the time' above."""
    return f"1/{1 / ratio:.3g}" if ratio < 1 else f"{ratio:.3g}x"


def describe(pair: PairedTradeoff) -> str:
    """'turbo reaches 97% of standard's CLIP score (95% CI 94-100%) in 1/7.9 of its time per
    image (95% CI 1/8.3-1/7.5), over 24 prompt-seed pairs: ...' and the quality verdict."""
    q, t, m = pair.quality, pair.time_ratio, pair.memory_ratio
    where = f"[{pair.context}] " if pair.context != "all" else ""
    reach = (f"{pair.candidate} reaches {_percent_of(pair.baseline_clip, q.estimate)} of {pair.baseline}'s CLIP "
             f"score ({100 * q.confidence:.3g}% CI {_percent_of(pair.baseline_clip, q.low)}-"
             f"{_percent_of(pair.baseline_clip, q.high)})")
    time = (f"in {_fraction(t.estimate)} of its time per image ({100 * t.confidence:.3g}% CI {_fraction(t.low)}-"
            f"{_fraction(t.high)})" if t is not None else "(time not measured on both)")
    if m is not None:
        time += (f" and {m.estimate:.3g}x the memory a card must hold ({100 * m.confidence:.3g}% CI "
                 f"{m.low:.3g}-{m.high:.3g})")
    points = f"{q.estimate:+.2f} CLIP points ({q.low:+.2f} to {q.high:+.2f})"
    # several seeds of a prompt are averaged: the prompts are the independent pairs
    over = f"{q.n} prompts ({q.pairs} prompt-seed pairs)" if q.pairs > q.n else f"{q.n} prompt-seed pairs"
    unit = "prompts" if q.pairs > q.n else "prompt-seed pairs"
    if q.verdict == "too few to tell":
        judged = (f"too few pictures to judge the quality difference ({over}; "
                  f"{q.more_needed} more {unit} would let a signed-rank test reach p<0.05)")
    elif q.verdict == "negligible":
        judged = f"the quality difference is under {QUALITY_MIN_EFFECT} points: negligible ({points})"
    elif q.verdict == "not significant":
        judged = f"no significant quality difference ({points}, {stats.format_p(q.p_value)})"
    elif q.verdict == "not resolved":
        judged = (f"a real quality difference whose interval reaches across {QUALITY_MIN_EFFECT} points ({points}, "
                  f"{stats.format_p(q.p_value)}): about {q.more_needed} more {unit} would settle it")
    else:
        judged = f"its CLIP score is {q.verdict} ({points}, {stats.format_p(q.p_value)})"
    sentence = f"{where}{reach} {time}, over {over}; {judged}."
    if pair.noisy_cells:  # the CLIP score stands; the time was not the machine's alone
        sentence += (f" {pair.noisy_cells} of its {2 * max(q.n, q.pairs)} cells were flagged noisy (other work competed): the time "
                     "ratio is not the machine's alone; rerun on a quiet machine")
    return sentence
