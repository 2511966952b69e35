"""A suite file -> a typed, validated Suite (suitemodel.py), checked down to its cells (expanded
once through plan.py). Errors name file:line, field, value and what is allowed."""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..rules import samplers
from .plan import expanded
from .suitemodel import AXES, AxisValues, ModelSpec, QualitySpec, Suite, axis_values_model
from .yamlsource import Loc, SuiteError, line_of, load_yaml

__all__ = ["AXES", "MAX_CELLS", "AxisValues", "ModelSpec", "QualitySpec", "Suite", "axis_values_model", "json_schema",
           "load_suite", "suite_problems"]

MAX_CELLS = 10_000


def _describe_allowed(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        return f"allowed: {ctx.get('expected', '')}".replace("'", "")
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        words = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
        bound = ctx.get("ge", ctx.get("gt", ctx.get("le", ctx.get("lt"))))
        return f"allowed: a number {words[kind]} {bound}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"][0].lower() + error["msg"][1:]


def _format_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Collects suite errors with their lines; raises the first one (the one users fix first)."""

    def __init__(self, path: Path, lines: dict[Loc, int]) -> None:
        self.path = path
        self.lines = lines

    def fail(self, loc: Loc, message: str) -> SuiteError:
        return SuiteError(self.path, line_of(self.lines, loc), message)

    def field_name(self, loc: Loc) -> str:
        text = ""
        for part in loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text or "(top level)"

    def from_validation(self, exc: ValidationError, prefix: Loc, allowed_keys: dict[Loc, list[str]],
                        at: Loc | None = None) -> SuiteError:
        """Phrase pydantic's first error; `at` overrides where it happened (matrix values)."""
        return self.from_error(exc.errors()[0], prefix, allowed_keys, at)

    def from_error(self, error: Any, prefix: Loc, allowed_keys: dict[Loc, list[str]],
                   at: Loc | None = None) -> SuiteError:
        loc = at if at is not None else (*prefix, *error["loc"])
        field = self.field_name(loc)
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            options = allowed_keys.get(loc[:-1], [])
            close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return self.fail(loc, f"unknown field '{field}'{hint} (allowed: {', '.join(options)})")
        if error["type"] == "missing":
            return self.fail(loc, f"missing required field '{field}'")
        given = _format_value(error.get("input"))
        return self.fail(loc, f"field '{field}': given {given}; {_describe_allowed(error)}")


def _axis_adapter(axis: str) -> TypeAdapter[Any]:
    return TypeAdapter(AxisValues.model_fields[axis].annotation)


def _validate_axis_values(check: _Checker, axis: str, values: Any, loc: Loc) -> list[Any]:
    """Validate one matrix/include entry's values for `axis` through the AxisValues field rules."""
    items = values if isinstance(values, list) else [values]
    if isinstance(values, list) and not values:
        raise check.fail(loc, f"field '{check.field_name(loc)}': the list is empty; give at least one value")
    result = []
    for i, item in enumerate(items):
        item_loc = (*loc, i) if isinstance(values, list) else loc
        if isinstance(item, (dict, list)):
            raise check.fail(item_loc, f"field '{check.field_name(item_loc)}': given {_format_value(item)}; "
                                       "expected a single value")
        try:
            validated = AxisValues.model_validate({axis: item})
        except ValidationError as exc:
            raise check.from_validation(exc, (), {}, at=item_loc) from None
        result.append(getattr(validated, axis))
    return result


def _check_axes_mapping(check: _Checker, mapping: Any, loc: Loc, what: str) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise check.fail(loc, f"field '{check.field_name(loc)}': {what} must be a mapping of axis: values")
    for key in mapping:
        if key not in AXES:
            close = difflib.get_close_matches(str(key), AXES, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise check.fail((*loc, key), f"unknown axis '{key}' in {check.field_name(loc)}{hint} "
                                          f"(allowed: {', '.join(AXES)})")
    return mapping


MAX_REPORTED_ERRORS = 20


def load_suite(path: str | Path, text: bytes | str | None = None, allow_pickle: bool = False,
               trust_remote_code: bool = False) -> Suite:
    """Read, validate and cross-check a suite file. Raises SuiteError (one line, with file:line):
    the first of its problems (`suite_problems` lists them all).

    `allow_pickle` and `trust_remote_code` are the command line's overrides for every model.
    """
    suite, problems = suite_problems(path, text, allow_pickle, trust_remote_code)
    if problems:
        raise problems[0]
    assert suite is not None
    return suite


def suite_problems(path: str | Path, text: bytes | str | None = None, allow_pickle: bool = False,
                   trust_remote_code: bool = False) -> tuple[Suite | None, list[SuiteError]]:
    """Every problem of a suite file that can be found in one pass (up to MAX_REPORTED_ERRORS),
    so that a file with three mistakes takes one round of fixing, not three."""
    problems: list[SuiteError] = []
    try:
        suite = _load_collecting(Path(path), text, allow_pickle, trust_remote_code, problems)
    except SuiteError as exc:  # a problem that stops the reading (YAML, structure)
        problems.append(exc)
        suite = None
    unique = sorted({str(p): p for p in problems}.values(), key=lambda p: (p.line is None, p.line or 0))  # file order
    return (suite if not unique else None), unique[:MAX_REPORTED_ERRORS]


def _load_collecting(path: Path, text: bytes | str | None, allow_pickle: bool, trust_remote_code: bool,
                     problems: list[SuiteError]) -> Suite | None:
    raw = path.read_bytes() if text is None and path.is_file() else text
    data, lines = load_yaml(path, raw)
    check = _Checker(path, lines)
    if not isinstance(data, dict):
        raise check.fail((), "a suite must be a mapping with at least 'name' and 'models' or 'matrix'")

    allowed = {
        (): list(Suite.model_fields.keys() - {"path", "sha256", "base_dir"}),
        ("defaults",): list(AXES),
    }
    for name, spec in (data.get("models") or {}).items() if isinstance(data.get("models"), dict) else []:
        allowed[("models", name)] = list(ModelSpec.model_fields)
        allowed[("models", name, "defaults")] = list(AXES)
    for key in ("path", "sha256", "base_dir"):
        if key in data:
            raise check.fail((key,), f"unknown field '{key}' (allowed: {', '.join(allowed[()])})")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems.extend(_merge_union_errors(check, exc, allowed))
        # The axes and the models' files are checked on their own too, so that their mistakes
        # come in the same round.
        _check_axes(check, data.get("matrix") or {}, data.get("include") or [], data.get("exclude") or [], problems,
                    data.get("recipes") or {})
        _check_model_sources(_valid_models(data.get("models"), allow_pickle), path.resolve().parent, check, problems)
        return None

    for spec in suite.models.values():
        spec.allow_pickle = spec.allow_pickle or allow_pickle
        spec.trust_remote_code = spec.trust_remote_code or trust_remote_code
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    suite.path = str(path)
    suite.sha256 = hashlib.sha256(raw or b"").hexdigest()
    suite.base_dir = str(path.resolve().parent)

    before = len(problems)
    _read_prompts(suite, data, check, problems)
    _check_clip(suite, check, problems)
    suite.matrix, suite.include, suite.exclude = _check_axes(check, suite.matrix, suite.include, suite.exclude,
                                                             problems, suite.recipes)
    if len(problems) > before:
        # the models' files need no axis: report them in the same round
        _check_model_sources(suite.models, Path(suite.base_dir), check, problems)
        return None  # the other cross-checks need valid axes
    _cross_check(suite, check, problems)
    return suite


def _read_prompts(suite: Suite, data: dict[str, Any], check: _Checker, problems: list[SuiteError]) -> None:
    """`prompts: FILE` becomes the matrix's prompt axis (read here, so a bad file is a suite error)."""
    if suite.prompts is None:
        return
    if "prompt" in suite.matrix:
        problems.append(check.fail(("prompts",), "the prompts are given twice (prompts: and matrix.prompt): "
                                                 "keep one"))
        return
    from ..prompts import prompt_file

    try:
        suite.matrix["prompt"] = prompt_file(suite.prompts, Path(suite.base_dir))
    except ValueError as exc:
        problems.append(check.fail(("prompts",), str(exc)))


def _check_clip(suite: Suite, check: _Checker, problems: list[SuiteError]) -> None:
    """A CLIP folder that is not there is a mistake to fix now, not after the run; a Hub id that is
    not cached offline is only said (plan and run say it; `diffbench score` can add the scores later)."""
    from ..contract.files import FileError, suite_path
    from ..measure.clipscore import checkpoint_problem, looks_like_hub_id

    name = suite.quality.clip
    if name is None or (looks_like_hub_id(name) and not (Path(suite.base_dir) / name).is_dir()):
        return
    try:
        if not name.startswith("builtin:"):
            suite_path(name, Path(suite.base_dir), "CLIP checkpoint folder")
        problem = checkpoint_problem(name, Path(suite.base_dir))
    except FileError as exc:
        problem = str(exc)
    if problem:
        problems.append(check.fail(("quality", "clip"), f"field 'quality.clip': {problem}"))


UNION_TAG = re.compile(r"^(constrained-|literal\[|function-|int$|str$|float$|bool$|list\[)")


def _merge_union_errors(check: _Checker, exc: ValidationError, allowed: dict[Loc, list[str]]) -> list[SuiteError]:
    """One error per field: pydantic reports a union (`repeats: 3 | auto`) once per member."""
    by_field: dict[Loc, list[Any]] = {}
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and UNION_TAG.match(part)))
        by_field.setdefault(loc, []).append({**error, "loc": loc})
    merged = []
    for errors in by_field.values():
        if len(errors) == 1:
            merged.append(check.from_error(errors[0], (), allowed))
            continue
        first = check.from_error(errors[0], (), allowed)
        options = " or ".join(_describe_allowed(e).removeprefix("allowed: ") for e in errors)
        merged.append(SuiteError(first.path, first.line, f"{str(first.message).split('; allowed')[0]}; allowed: {options}"))
    return merged


def _check_axes(check: _Checker, matrix: Any, include: Any, exclude: Any,
                problems: list[SuiteError], recipes: Any = None) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Validate the matrix, the include/exclude entries and the recipes (normalised in place),
    collecting every problem."""
    def attempt(function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except SuiteError as exc:
            problems.append(exc)
            return None

    def known_axes(mapping: Any, loc: Loc, what: str) -> dict[str, Any] | None:
        """The mapping's known axes; each unknown one is a problem of its own."""
        if not isinstance(mapping, dict):
            problems.append(check.fail(loc, f"field '{check.field_name(loc)}': {what} must be a mapping of axis: values"))
            return None
        for key in mapping:
            if key not in AXES:
                attempt(_check_axes_mapping, check, {key: None}, loc, what)
        return {k: v for k, v in mapping.items() if k in AXES}

    checked_matrix: dict[str, Any] = {}
    matrix = known_axes(matrix, ("matrix",), "matrix")
    if matrix is not None:
        for axis, values in matrix.items():
            validated = attempt(_validate_axis_values, check, axis, values, ("matrix", axis))
            if validated is not None:
                checked_matrix[axis] = validated
    sections: dict[str, list[Any]] = {}
    for section, entries in (("include", include), ("exclude", exclude)):
        sections[section] = []
        if not isinstance(entries, list):
            continue  # pydantic has said so
        for i, raw_entry in enumerate(entries):
            entry = known_axes(raw_entry, (section, i), section)
            if entry is None:
                continue
            if not raw_entry:
                problems.append(check.fail((section, i), f"field '{section}[{i}]' is empty; give at least one axis"))
                continue
            values = {a: attempt(_validate_axis_values, check, a, v, (section, i, a)) for a, v in entry.items()}
            sections[section].append({a: v for a, v in values.items() if v is not None})
    for name, raw_recipe in (recipes.items() if isinstance(recipes, dict) else ()):
        recipe = known_axes(raw_recipe, ("recipes", name), "a recipe")
        if recipe is None:
            continue
        for axis, value in recipe.items():
            if axis == "recipe" or isinstance(value, (list, dict)):
                what = "the recipe's own name" if axis == "recipe" else "a list"
                problems.append(check.fail(("recipes", name, axis), f"field 'recipes.{name}.{axis}': a recipe holds "
                                                                     f"one value per axis, not {what}"))
                continue
            validated = attempt(_validate_axis_values, check, axis, value, ("recipes", name, axis))
            if validated is not None:
                raw_recipe[axis] = validated[0] if isinstance(validated, list) else validated
    return checked_matrix, sections["include"], sections["exclude"]


def _check_lora_files(suite: Suite, check: _Checker, problems: list[SuiteError], base_dir: Path) -> None:
    """Every LoRA file a suite names exists, so that a typo fails before the run, with its line."""
    from ..rules.loras import parse_loras
    from .lorafiles import file_problem, missing_files

    places: list[tuple[str, Loc]] = [(v, ("matrix", "lora", i)) for i, v in enumerate(suite.matrix.get("lora", []))]
    for i, entry in enumerate(suite.include):
        places += [(v, ("include", i, "lora", j)) for j, v in enumerate(entry.get("lora", []))]
    if suite.defaults.lora:
        places.append((suite.defaults.lora, ("defaults", "lora")))
    for name, spec in suite.models.items():
        if spec.defaults.lora:
            places.append((spec.defaults.lora, ("models", name, "defaults", "lora")))
    for value, loc in places:
        outside = _outside_files(value, base_dir)
        for why in outside:
            problems.append(check.fail(loc, f"field '{check.field_name(loc)}': LoRA {why}"))
        if outside:
            continue
        missing = missing_files(value, base_dir)
        for name in missing:
            problems.append(check.fail(loc, f"field '{check.field_name(loc)}': LoRA file '{name}' not found "
                                            f"(relative paths start at the suite's folder, {base_dir})"))
        for use in parse_loras(value):  # the header of every one that is there: a broken file fails now
            path = Path(use.path) if Path(use.path).is_absolute() else base_dir / use.path
            problem = file_problem(path) if use.path not in missing else None
            if problem:
                problems.append(check.fail(loc, f"field '{check.field_name(loc)}': LoRA file {problem}"))


def _outside_files(value: str, base_dir: Path) -> list[str]:
    """The path-policy problems of a LoRA setting's files (files.suite_path)."""
    from ..contract.files import FileError, suite_path
    from ..rules.loras import parse_loras

    found = []
    for use in parse_loras(value):
        try:
            suite_path(use.path, base_dir, "file")
        except FileError as exc:
            found.append(str(exc))
    return found


def _valid_models(models: Any, allow_pickle: bool) -> dict[str, ModelSpec]:
    """The model entries that are valid on their own, in a suite that is not valid as a whole
    (their mistakes are reported by the suite's validation already)."""
    valid = {}
    for name, entry in models.items() if isinstance(models, dict) else []:
        try:
            spec = ModelSpec.model_validate(entry)
        except (ValidationError, TypeError, ValueError):
            continue
        spec.allow_pickle = spec.allow_pickle or allow_pickle
        valid[str(name)] = spec
    return valid


def _check_model_sources(models: dict[str, ModelSpec], base_dir: Path, check: _Checker,
                         problems: list[SuiteError]) -> None:
    """Each model's source (and base): a check of the models alone, no axis needed."""
    from ..models.sources import check_source

    for name, spec in models.items():
        problem = check_source(spec.source, base_dir, spec.allow_pickle, spec.family, spec.base)
        if problem:
            field_name = "base" if problem.startswith("base: ") else "source"
            problems.append(check.fail(("models", name, field_name), f"model '{name}': {problem}"))


def _cross_check(suite: Suite, check: _Checker, problems: list[SuiteError]) -> None:
    """Checks that need more than one field: model references, samplers per family, matrix size.
    Independent problems are all collected; one that makes the rest meaningless is raised."""
    if not suite.models:
        raise check.fail(("models",), "the suite names no models; add e.g. models: {tiny: {source: builtin:tiny-sd}}")
    base_dir = Path(suite.base_dir)
    _check_model_sources(suite.models, base_dir, check, problems)
    _check_lora_files(suite, check, problems, base_dir)
    model_locs: list[tuple[str, Loc]] = [(m, ("matrix", "model", i)) for i, m in enumerate(suite.matrix.get("model", []))]
    for i, entry in enumerate(suite.include):
        model_locs += [(m, ("include", i, "model", j)) for j, m in enumerate(entry.get("model", []))]
    if suite.defaults.model:
        model_locs.append((suite.defaults.model, ("defaults", "model")))
    model_locs += [(recipe["model"], ("recipes", name, "model")) for name, recipe in suite.recipes.items()
                   if "model" in recipe]
    for name, loc in model_locs:
        if not isinstance(name, str):  # `model: null` or a number: not a name at all
            given = "null" if name is None else _format_value(name)
            problems.append(check.fail(loc, f"field '{check.field_name(loc)}': given {given}; give a model "
                                            f"defined under 'models': {', '.join(suite.models)}"))
        elif name not in suite.models:
            close = difflib.get_close_matches(name, list(suite.models), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(check.fail(loc, f"model '{name}' is not defined under 'models'; {hint}"
                                            f"defined: {', '.join(suite.models)}"))
    if problems:
        return
    if not model_locs and len(suite.models) != 1:
        raise check.fail(("matrix",), "say which models to run: add a 'model' axis to the matrix")
    from ..models.sources import infer_family
    from ..rules.families import UnknownFamily

    for name, spec in suite.models.items():  # a family that cannot be told is said now, at the model
        if spec.family is None:
            try:
                infer_family(spec.pipeline_source, Path(suite.base_dir or "."))
            except UnknownFamily as exc:
                problems.append(check.fail(("models", name, "source" if spec.base is None else "base"),
                                           f"model '{name}': {exc}"))
    if problems:
        return

    # counted as plan.expand builds them: the matrix (no matrix: one cell of the defaults, none when
    # includes say which cells to run), times the recipes, plus every include
    size = 0 if not suite.matrix and suite.include else 1
    for values in suite.matrix.values():
        size *= len(values)
    size *= max(1, len(suite.recipes))
    for entry in suite.include:
        extra = 1
        for values in entry.values():
            extra *= len(values)
        size += extra
    if size > MAX_CELLS:
        where: Loc = ("matrix",) if suite.matrix else ("include",) if suite.include else ("recipes",)
        raise check.fail(where, f"the suite expands to {size} cells; at most {MAX_CELLS} are allowed "
                                "(split the suite, or narrow an axis)")

    cells = expanded(suite)  # the matrix must be expanded to know which model meets which sampler (once: the plan takes them)
    if not cells:
        raise check.fail(("matrix",), "the matrix is empty after include/exclude: no cell to run")
    for cell in cells:
        family = cell.family
        try:
            samplers.resolve(cell.settings["sampler"], family)
        except samplers.SamplerError as exc:
            loc = ("matrix", "sampler") if "sampler" in suite.matrix else ("defaults", "sampler")
            problems.append(check.fail(loc, f"model '{cell.model_name}': {exc}; exclude the pair with "
                                            f"exclude: [{{model: {cell.model_name}, "
                                            f"sampler: '{cell.settings['sampler']}'}}]"))
    _check_tasks(suite, cells, check, problems, base_dir)


def _axis_loc(suite: Suite, axis: str, model_name: str | None = None) -> Loc:
    """Where a suite sets `axis`, for an error's line: the matrix, an include, the defaults, or
    the model's defaults."""
    if axis in suite.matrix:
        return ("matrix", axis)
    for i, entry in enumerate(suite.include):
        if axis in entry:
            return ("include", i, axis)
    if model_name and getattr(suite.models[model_name].defaults, axis) is not None:
        return ("models", model_name, "defaults", axis)
    return ("defaults", axis)


def _check_tasks(suite: Suite, cells: list[Any], check: _Checker, problems: list[SuiteError], base_dir: Path) -> None:
    """Each cell's task suits its model, and the task's settings suit the task (one problem per
    kind of mistake and model, not one per cell)."""
    from ..rules import tasks
    from ..rules.families import family as family_spec

    found: dict[tuple[str, str], SuiteError] = {}

    def problem(kind: str, axis: str, cell: Any, message: str) -> None:
        key = (kind, cell.model_name)
        if key not in found:
            loc = _axis_loc(suite, axis, cell.model_name)
            found[key] = check.fail(loc, f"field '{check.field_name(loc)}': model '{cell.model_name}': {message}")

    hint = "; exclude the pair, or set it in an include entry for the tasks it suits"
    for cell in cells:
        spec, settings = family_spec(cell.family), cell.settings
        task = settings["task"]
        if task not in spec.tasks:
            why = dict(spec.task_notes).get(task)
            problem("task", "task", cell, f"a {spec.name} model runs {', '.join(spec.tasks)}, not {task}"
                    + (f" ({why})" if why else ""))
            continue
        if task not in tasks.STRENGTH_TASKS and settings["strength"] is not None:
            problem("strength", "strength", cell, f"strength applies to image-to-image and inpainting, not {task}"
                    + hint)
        if not spec.video and (settings["frames"] is not None or settings["fps"] is not None):
            axis = "frames" if settings["frames"] is not None else "fps"
            problem(axis, axis, cell, f"{axis} applies to video models; a {spec.name} model makes images" + hint)
        if task not in tasks.IMAGE_INPUT_TASKS and settings["init_image"] is not None:
            problem("init_image", "init_image", cell, f"init_image applies to tasks that start from an image "
                    f"({', '.join(sorted(tasks.IMAGE_INPUT_TASKS))}), not {task}" + hint)
        if task != "inpainting" and settings["mask_image"] is not None:
            problem("mask_image", "mask_image", cell, f"mask_image applies to inpainting, not {task}" + hint)
        if task in tasks.STRENGTH_TASKS:
            kept = tasks.effective_steps(settings["steps"], settings["strength"], spec.strength_rounding)
            if kept < 1:
                problem("no steps", "strength", cell, f"strength {settings['strength']} of {settings['steps']} steps "
                        "leaves no step to run; raise strength or steps")
        size = settings["resolution"] or spec.native_resolution
        if any(int(side) % spec.resolution_multiple for side in str(size).lower().split("x")):
            problem("resolution", "resolution", cell, f"a {spec.name} model needs width and height in multiples of "
                    f"{spec.resolution_multiple}; {size} is not (its pipeline would refuse or resize it)")
        if spec.video and settings["frames"] is not None:
            wrong = tasks.frames_problem(settings["frames"], spec.frame_multiple)
            most = _max_frames(suite, cell.model_name)
            if not wrong and most is not None and settings["frames"] > most:
                wrong = (f"frames {settings['frames']}: this model's positional embedding covers at most {most} "
                         "frames")
            if wrong:
                problem("frames", "frames", cell, wrong)
        for axis in ("init_image", "mask_image"):
            if settings[axis] is not None:
                wrong = _image_file_problem(settings[axis], base_dir)
                if wrong:
                    problem(f"file {settings[axis]}", axis, cell, wrong)
    problems.extend(found.values())


def _max_frames(suite: Suite, model_name: str) -> int | None:
    """The longest clip a built-in model's denoiser reaches, where the model is one (others: the run says)."""
    from ..rules.presets import BUILTINS

    spec = suite.models.get(model_name)
    source = str(getattr(spec, "source", "") or "")
    preset = BUILTINS.get(source.removeprefix("builtin:")) if source.startswith("builtin:") else None
    return preset.max_frames if preset is not None else None


def _image_file_problem(name: str, base_dir: Path) -> str | None:
    """Why an input image cannot be read (outside the suite's tree, missing, not a regular file, too
    large, not an image), or None."""
    from ..contract.files import FileError, suite_path
    from .inputimages import InputImageError, read_input_image

    try:
        path = suite_path(name, base_dir, "image file")
    except FileError as exc:
        return str(exc)

    if not path.exists() and not path.is_symlink():
        return f"image file '{path}' not found (relative paths start at the suite's folder)"
    try:
        read_input_image(path, "RGB")
    except InputImageError as exc:
        return str(exc)
    return None


def json_schema() -> dict[str, Any]:
    """A JSON Schema for editors (yaml-language-server and the like)."""
    schema = Suite.model_json_schema(mode="validation")
    axis_schema = {
        axis: {"anyOf": [sub, {"type": "array", "items": sub, "minItems": 1}]}
        for axis, sub in AxisValues.model_json_schema()["properties"].items()
    }
    schema["properties"]["matrix"] = {"type": "object", "properties": axis_schema, "additionalProperties": False}
    entry = {"type": "object", "properties": axis_schema, "additionalProperties": False, "minProperties": 1}
    schema["properties"]["include"] = {"type": "array", "items": entry}
    schema["properties"]["exclude"] = {"type": "array", "items": entry}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "diffbench suite"
    defs = schema.get("$defs", {})
    if "AxisValues" in defs:
        defs["AxisValues"]["properties"]["sampler"]["examples"] = samplers.known_names()
    return schema
