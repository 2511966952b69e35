"""Matrix expansion: a Suite -> ordered cells with stable ids, and what is skipped and why."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models.sources import builtin_defaults, infer_family, source_kind
from ..rules import axes, families, samplers, tasks
from ..rules.applicability import setting_problem
from ..rules.loras import is_fused

if TYPE_CHECKING:
    from .suitemodel import Suite



@dataclass
class Cell:
    """One point of the matrix: fully resolved settings and a stable identity."""

    model_name: str
    model: dict[str, Any]  # source, family, revision, variant, config, allow_pickle, trust_remote_code
    settings: dict[str, Any]  # every axis, resolved
    cell_id: str = ""
    skip_reason: str | None = None
    duplicate_of: str | None = None

    @property
    def family(self) -> str:
        return str(self.model["family"])

    @property
    def load_key(self) -> str:
        # the settings whose change needs a fresh pipeline load (axes.LOAD_KEYS); everything else
        # (sampler, steps, resolution, ...) is applied to a loaded one
        key = {k: self.settings[k] for k in axes.LOAD_KEYS if k != "model"}
        if is_fused(self.settings.get("lora")):  # fused LoRAs change the weights: a load of their own
            key["lora"] = self.settings["lora"]
        return _digest({"model": self.model, **key})

    def resolved(self) -> dict[str, Any]:
        """What goes into the results as `cell`: settings with the model's name, source and family."""
        resolved = {**self.settings, "model": self.model_name, "source": self.model["source"],
                    "family": self.family, "weights": self.model["weights"],
                    "revision": self.model.get("revision"), "variant": self.model.get("variant")}
        if self.model.get("base"):  # a denoiser file's pipeline (only when set: older records stay as they were)
            resolved["base"] = self.model["base"]
        return resolved


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]




def cell_identity(model: dict[str, Any], settings: dict[str, Any]) -> str:
    """Hash of what determines the measurement: the model's weights and every setting.

    The model's label in the suite is left out, so renaming a model keeps its ids; its
    source, revision and variant are in. The same suite gives the same ids on any host.
    Unset (None) settings are left out too, so that an axis added in a later version
    (defaulting to None) does not change the ids of results already on disk.
    """
    # a setting whose default is written out but means "the axis is not used" is left out like an
    # unset one, so that cells measured before the axis existed keep their ids
    unused = axes.UNUSED_SETTINGS
    identity = {k: v for k, v in settings.items()
                if k != "model" and v is not None and not (k in unused and unused[k] == v)}
    weights = {k: model.get(k) for k in ("source", "revision", "variant")}
    if model.get("base"):  # only when set: the ids of models without one stay as they were
        weights["base"] = model["base"]
    return _digest({"weights": weights, "settings": identity})


def _model_record(suite: Suite, name: str) -> dict[str, Any]:
    spec = suite.models[name]
    base_dir = Path(suite.base_dir or ".")
    kind = source_kind(spec.source, base_dir)
    random_weights = {kind, source_kind(spec.pipeline_source, base_dir)} & {"builtin", "synthetic"}
    return {
        "source": spec.source,
        "base": spec.base,
        "base_kind": source_kind(spec.base, base_dir) if spec.base else None,
        "kind": kind,
        "family": spec.family or infer_family(spec.pipeline_source, base_dir),
        "weights": "random" if random_weights else "pretrained",
        "revision": spec.revision,
        "variant": spec.variant,
        "config": spec.config,
        "allow_pickle": spec.allow_pickle,
        "trust_remote_code": spec.trust_remote_code,
    }


def _combinations(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[n] for n in names))]


def _canonical_sampler(name: Any, family: str) -> Any:
    try:
        return samplers.resolve(str(name), family).key
    except samplers.SamplerError:
        return name


def _matches(settings: dict[str, Any], rule: dict[str, list[Any]], family: str) -> bool:
    """Whether resolved settings match an include/exclude rule (samplers compared by meaning, so
    'Euler' in a rule matches the cell's canonical 'euler', or 'flow_euler' on a flow model)."""
    for axis, values in rule.items():
        if axis == "sampler":
            values = [_canonical_sampler(v, family) for v in values]
        if settings.get(axis) not in values:
            return False
    return True


def _resolve(suite: Suite, explicit: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Fill every axis: explicit (matrix/include) > the model's defaults > suite defaults > built-in."""
    model_name = explicit.get("model") or suite.defaults.model or next(iter(suite.models))
    spec = suite.models[model_name]
    suite_defaults = suite.defaults.model_dump(exclude_none=True)
    model_defaults = spec.defaults.model_dump(exclude_none=True)
    if spec.dtype:
        model_defaults.setdefault("dtype", spec.dtype)
    layers = [axes.builtin_defaults(), builtin_defaults(spec.pipeline_source), suite_defaults, model_defaults, explicit]
    settings: dict[str, Any] = {}
    for layer in layers:
        settings.update({k: v for k, v in layer.items() if v is not None or k not in settings})
    settings["model"] = model_name
    family = spec.family or infer_family(spec.pipeline_source, Path(suite.base_dir or "."))
    usual = families.family(family)
    if settings["resolution"] is None:  # each family's native resolution
        settings["resolution"] = usual.native_resolution
    if settings["guidance_scale"] is None:  # each family's usual guidance
        settings["guidance_scale"] = usual.default_guidance
    if settings["task"] is None:
        settings["task"] = usual.own_task
    if settings["strength"] is None and settings["task"] in tasks.STRENGTH_TASKS:
        settings["strength"] = tasks.DEFAULT_STRENGTH[settings["task"]]
    if usual.video:  # frames and frame rate matter to video only; the suite checks say so otherwise
        settings["frames"] = settings["frames"] if settings["frames"] is not None else usual.default_frames
        settings["fps"] = settings["fps"] if settings["fps"] is not None else usual.default_fps
    try:  # one canonical name, so that 'Euler' and 'euler' are the same cell
        settings["sampler"] = samplers.resolve(settings["sampler"], family).key
    except samplers.SamplerError:
        pass  # the suite checks report it with its line
    return model_name, settings


def expand(suite: Suite) -> list[Cell]:
    """Every cell of the matrix plus includes, minus excludes, in suite order, ids assigned.

    Cells that repeat an earlier one (an include that the matrix already has) are marked
    as duplicates rather than run twice.
    """
    # (explicit settings, from an include?) -- includes are added after excludes apply.
    # No matrix: one cell of the defaults, unless include entries say which cells to run.
    base = _combinations(suite.matrix) if suite.matrix else ([] if suite.include else [{}])
    if suite.recipes:  # each recipe crossed with the matrix, its own values winning
        base = [{**combination, **values, "recipe": name} for combination in base
                for name, values in suite.recipes.items()]
    explicit_sets = [(s, False) for s in base]
    for entry in suite.include:
        explicit_sets += [(s, True) for s in _combinations(entry)]
    models: dict[str, dict[str, Any]] = {}
    cells: list[Cell] = []
    seen: dict[str, str] = {}
    for explicit, included in explicit_sets:
        name, settings = _resolve(suite, explicit)
        model = models.setdefault(name, _model_record(suite, name))
        if not included and any(_matches(settings, rule, model["family"]) for rule in suite.exclude):
            continue
        cell = Cell(name, model, settings)
        cell.cell_id = cell_identity(model, settings)
        if cell.cell_id in seen:
            cell.duplicate_of = seen[cell.cell_id]
        else:  # what a later duplicate is told it repeats: the entry that first produced this cell
            where = "include" if included else "matrix"
            shown = ", ".join(f"{k}={v}" for k, v in explicit.items()) or "the defaults"
            seen[cell.cell_id] = f"{cell.cell_id} ({where}: {shown})"
        cells.append(cell)
    return cells


def static_skip_reason(cell: Cell, placed_by_cluster: bool = False) -> str | None:
    """Why a cell cannot run wherever it runs, told from an explicit device alone (recorded
    not_applicable); "auto" is resolved per host (hardware/availability.DeviceCheck).

    On a cluster the gpu axis chooses the node, so a CPU cell may still name one. A step cache
    that the cell's family does not list is refused on any device (per cell: cells of one load may
    differ in cache; the worker asks the same when it applies one).
    """
    from ..rules.caches import family_cache_problem

    problem = family_cache_problem(cell.settings.get("cache"), cell.family)
    if problem:
        return problem
    device = str(cell.settings["device"])
    if device == "auto":
        return None
    return setting_problem(cell.settings, device.partition(":")[0], placed_by_cluster, check_packages=False)


@dataclass
class Plan:
    """Cells in run order (grouped by pipeline load), and the ones left out with reasons."""

    suite: Suite
    placed_by_cluster: bool = False
    cells: list[Cell] = field(default_factory=list)
    duplicates: list[Cell] = field(default_factory=list)

    @property
    def loads(self) -> int:
        """Pipeline loads of the cells that will run (a cell marked not applicable loads nothing)."""
        return len({c.load_key for c in self.runnable})

    @property
    def runnable(self) -> list[Cell]:
        return [c for c in self.cells if not c.skip_reason]

    @property
    def generations(self) -> int:
        """Generations at most of the cells that will run (with auto repeats, cells may stop sooner)."""
        return len(self.runnable) * (self.suite.most_warmups + self.suite.max_repeats)

    @property
    def generations_min(self) -> int:
        """Generations at least, when every runnable cell runs (auto repeats stopping as early as allowed)."""
        return len(self.runnable) * (self.suite.warmup + self.suite.pilot_repeats + self.suite.min_repeats)


def expanded(suite: Suite) -> list[Cell]:
    """`expand(suite)`, once per suite: validating a suite expands it to check its cells, and the
    plan made from it takes those cells (copies: a plan marks its own) unless the suite changed since."""
    import dataclasses

    fingerprint = suite.model_dump_json()
    cached = suite._expanded
    if cached is None or cached[0] != fingerprint:
        cached = suite._expanded = (fingerprint, expand(suite))
    return [dataclasses.replace(cell) for cell in cached[1]]


def make_plan(suite: Suite, placed_by_cluster: bool = False) -> Plan:
    """Order cells so that each pipeline loads once, and mark those that cannot apply.

    (What a results file being resumed already holds is left out later, per repeat, by the runner.)
    """
    plan = Plan(suite, placed_by_cluster)
    first_seen: dict[str, int] = {}
    runnable: list[Cell] = []
    for cell in expanded(suite):
        if cell.duplicate_of:
            plan.duplicates.append(cell)
            continue
        cell.skip_reason = static_skip_reason(cell, placed_by_cluster)
        first_seen.setdefault(cell.load_key, len(first_seen))
        runnable.append(cell)
    # Stable sort: load groups in order of first appearance; inside a group, suite order,
    # so that a sampler change never forces a reload.
    plan.cells = sorted(runnable, key=lambda c: first_seen[c.load_key])
    return plan
