"""Where a model's weights come from: builtin, Hub id, local diffusers folder or single file.

The checks here run at validate/plan time and must not import torch or diffusers;
`load_pipeline` (worker side) imports them lazily.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from ..rules.backends import installed
from ..rules.families import DENOISER_COMPONENTS, FAMILIES, UnknownFamily, by_pipeline_class, family, guess_from_name
from ..rules.presets import BUILTINS
from .synthetic import SYNTHETIC

SAFE_SUFFIXES = (".safetensors",)
GGUF_SUFFIX = ".gguf"  # a quantized denoiser (llama.cpp's format); the rest of the pipeline comes from `base`
PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
SYNTHETIC_PREFIX = "synthetic:"
BUILTIN_PREFIX = "builtin:"



def source_kind(source: str, base_dir: Path) -> str:
    """'builtin', 'synthetic', 'folder', 'file' or 'hub'."""
    if source.startswith(BUILTIN_PREFIX):
        return "builtin"
    if source.startswith(SYNTHETIC_PREFIX):
        return "synthetic"
    path = resolve_path(source, base_dir)
    if path.suffix.lower() in (*SAFE_SUFFIXES, *PICKLE_SUFFIXES, GGUF_SUFFIX):
        return "file"
    if path.exists() or source.startswith((".", "/", "~")):
        return "folder"
    return "hub"


def resolve_path(source: str, base_dir: Path) -> Path:
    """Paths in a suite are relative to the suite file."""
    path = Path(source).expanduser()
    return path if path.is_absolute() else (base_dir / path)


def offline() -> bool:
    """Whether the Hugging Face Hub must not be contacted (HF_HUB_OFFLINE, as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def host_problem(model: dict[str, Any]) -> str | None:
    """Why this host cannot load `model` (a plan cell's model record) without starting a worker."""
    if model.get("kind") == "hub" and offline():
        return hub_cache_problem(model["source"], model.get("revision"))
    if model.get("kind") == "hub" and hub_cache_problem(model["source"], model.get("revision")) is not None \
            and not hub_reachable():
        return (f"'{model['source']}' is not in the local Hugging Face cache, and {hub_endpoint()} cannot be reached "
                f"from here: download it where there is a network (huggingface-cli download {model['source']}) "
                "and copy the cache, or run where the Hub is reachable")
    if model.get("base"):
        return _denoiser_file_problem(model)
    if model.get("kind") == "file" and offline() and not model.get("config"):
        return (f"single-file checkpoint '{model['source']}' needs its family's configuration, and HF_HUB_OFFLINE "
                "is set: give config: a local diffusers folder of the same family (or a Hub id already in the "
                "cache)")
    if model.get("kind") == "file" and offline() and HUB_ID.match(str(model["config"])):
        return hub_cache_problem(str(model["config"]))
    return None


def _denoiser_file_problem(model: dict[str, Any]) -> str | None:

    if str(model["source"]).lower().endswith(GGUF_SUFFIX) and not installed("gguf"):
        return (f"reading '{Path(model['source']).name}' needs the gguf package, which is not installed here "
                "(pip install gguf, or diffbench[quantization])")
    if model.get("base_kind") == "hub" and offline():
        return hub_cache_problem(str(model["base"]), model.get("revision"))
    return None


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub's endpoint opens within `timeout_s` (asked once per
    process: a suite of Hub models on a host without a network fails in seconds, once, not after a
    worker per model has waited on diffusers' retries)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def hub_cache_problem(repo_id: str, revision: str | None = None) -> str | None:
    """Offline, a Hub id must already be in the local Hugging Face cache: say so now, in one line,
    rather than after a worker has started and diffusers has raised a page of text."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    if isinstance(found, str):
        return None
    where = f" at revision '{revision}'" if revision else ""
    return (f"'{repo_id}'{where} is not in the Hugging Face cache, and HF_HUB_OFFLINE is set: download it first "
            f"(huggingface-cli download {repo_id}), or unset HF_HUB_OFFLINE")


def hub_cache_status(repo_id: str, revision: str | None = None) -> str:
    """'in the local cache (6.9 GB)' or what a run would have to do to get it."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return "huggingface_hub is not installed"
    found = try_to_load_from_cache(repo_id, "model_index.json", revision=revision)
    if isinstance(found, str):
        snapshot = Path(found).parent
        size = sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())  # links resolve to the blobs
        return f"in the local cache ({size / 1e9:.1f} GB)" if size >= 1e9 else f"in the local cache ({size / 1e6:.1f} MB)"
    if offline():
        return "not in the local cache, and HF_HUB_OFFLINE is set: the run cannot get it"
    if not hub_reachable():
        return f"not in the local cache, and {hub_endpoint()} cannot be reached from here: its cells cannot run"
    return "not in the local cache: the run downloads it first (several GB for the large families)"


def check_source(source: str, base_dir: Path, allow_pickle: bool, family_given: str | None = None,
                 base: str | None = None) -> str | None:
    """A one-line problem with `source` (or, starting 'base: ', with `base`), or None when it can be
    loaded (as far as can be told offline)."""
    kind = source_kind(source, base_dir)
    if base is not None or resolve_path(source, base_dir).suffix.lower() == GGUF_SUFFIX:
        return _check_denoiser_file(source, base_dir, allow_pickle, family_given, base)
    if kind == "builtin":
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTINS:
            return f"unknown built-in '{name}' (available: {', '.join('builtin:' + n for n in BUILTINS)})"
        return None
    if kind == "synthetic":
        name = source[len(SYNTHETIC_PREFIX):]
        if name not in SYNTHETIC:
            return f"unknown synthetic model '{name}' (available: {', '.join('synthetic:' + n for n in SYNTHETIC)})"
        if SYNTHETIC[name].family not in FAMILIES:
            return (f"synthetic:{name} is counted, not run: `diffbench estimate --model {name}` and `diffbench gpus "
                    f"--model {name}` answer it from counts")
        return None
    if kind == "hub":
        if not HUB_ID.match(source):
            return f"'{source}' is neither a Hub id (owner/name), an existing folder nor a .safetensors file"
        return None  # whether this host can fetch it is the runner's question (host_problem), not the suite's
    path = resolve_path(source, base_dir)
    if not path.exists():
        return f"'{source}' does not exist (looked at {path})"
    if kind == "file":
        if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
            return (f"'{path.name}' is a pickle checkpoint, which can run code when loaded; "
                    "convert it to .safetensors or set allow_pickle: true for this model")
        from .checkpoints import single_file_families

        if family_given is not None and family_given not in single_file_families():
            return (f"'{path.name}': a {family_given} pipeline cannot load from one file in diffusers; use its "
                    f"diffusers folder or Hub id (single files: {', '.join(single_file_families())})")
        if family_given is None:
            if path.suffix.lower() not in SAFE_SUFFIXES:
                return f"set family: for '{path.name}' (a pickle's tensor names cannot be read without loading it)"
            from .checkpoints import CheckpointError, checkpoint_family

            try:
                checkpoint_family(path)
            except CheckpointError as exc:
                return str(exc)
        return None
    if not (path / "model_index.json").is_file():
        return f"folder '{source}' has no model_index.json (is it a diffusers pipeline folder?)"
    return None


def _check_denoiser_file(source: str, base_dir: Path, allow_pickle: bool, family_given: str | None,
                         base: str | None) -> str | None:
    """A denoiser-only file (source) going into a pipeline (base)."""
    path = resolve_path(source, base_dir)
    if source_kind(source, base_dir) != "file":
        return (f"base: applies to a denoiser file as source (.gguf or .safetensors); '{source}' is a "
                f"{source_kind(source, base_dir)} source, which is a whole pipeline already")
    if base is None:
        return (f"'{path.name}' holds a denoiser only: set base: to the pipeline it goes into (builtin:NAME, a "
                "diffusers folder or a Hub id), which gives the text encoders, the VAE and the config")
    base_kind = source_kind(base, base_dir)
    if base_kind not in {"builtin", "folder", "hub"}:
        return (f"base: '{base}' is a {base_kind} source; a base is a whole pipeline: builtin:NAME, a diffusers "
                "folder or a Hub id")
    problem = check_source(base, base_dir, allow_pickle, family_given)
    if problem:
        return f"base: {problem}"
    if not path.exists():
        return f"'{source}' does not exist (looked at {path})"
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        return (f"'{path.name}' is a pickle checkpoint, which can run code when loaded; "
                "convert it to .safetensors or set allow_pickle: true for this model")
    if path.suffix.lower() == GGUF_SUFFIX:
        from .gguf_header import GgufError, gguf_tensors

        try:
            gguf_tensors(path)
        except GgufError as exc:
            return str(exc)
    elif path.suffix.lower() in SAFE_SUFFIXES:  # its header read now, not after a worker started
        from .checkpoints import CheckpointError, safetensors_keys

        try:
            safetensors_keys(path)
        except CheckpointError as exc:
            return str(exc)
    if base_kind == "folder":
        return _denoiser_class_problem(resolve_path(base, base_dir) / "model_index.json")
    return None


MODEL_INDEX_MAX_BYTES = 1 << 20
DENOISER_LIBRARY = "diffusers"  # every denoiser class diffbench loads a file into is one of diffusers'


def denoiser_entry_problem(index: dict[str, Any], where: str) -> str | None:
    """Why a base's model_index.json entry for its denoiser cannot be used, or None. Only a
    diffusers class is ever looked up: importing whatever library a downloaded or hostile file
    names would run that module's import-time code (diffusers refuses it for the same reason)."""
    for name in DENOISER_COMPONENTS:
        entry = index.get(name)
        if entry is None:
            continue
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
            return f"{where}: the '{name}' entry is not [library, class]"
        library, class_name = entry
        if library != DENOISER_LIBRARY or not class_name.isidentifier():
            return (f"{where}: the '{name}' entry names {library!r}.{class_name!r}; a denoiser file is loaded "
                    f"only into a {DENOISER_LIBRARY} class")
        return None
    return f"{where}: no {' or '.join(DENOISER_COMPONENTS)} entry: not a pipeline a denoiser file can go into"




def _denoiser_class_problem(index_path: Path) -> str | None:
    from ..contract.files import FileError, open_regular

    try:
        with open_regular(index_path, MODEL_INDEX_MAX_BYTES) as handle:
            index = json.loads(handle.read(MODEL_INDEX_MAX_BYTES + 1))
    except (FileError, OSError, ValueError, RecursionError) as exc:
        return f"base: {index_path}: cannot be read ({str(exc).split(': ', 1)[-1][:200]})"
    if not isinstance(index, dict):
        return f"base: {index_path}: not a JSON object"
    problem = denoiser_entry_problem(index, str(index_path))
    return f"base: {problem}" if problem else None


def infer_family(source: str, base_dir: Path) -> str:
    """The model family (sd, sdxl, sd3, flux) from what can be read without loading weights."""
    kind = source_kind(source, base_dir)
    if kind == "builtin":
        name = source[len(BUILTIN_PREFIX):]
        return BUILTINS[name].family if name in BUILTINS else "sd"
    if kind == "synthetic":
        name = source[len(SYNTHETIC_PREFIX):]
        return SYNTHETIC[name].family if name in SYNTHETIC else "sd"
    if kind == "file" and resolve_path(source, base_dir).suffix.lower() in SAFE_SUFFIXES:
        from .checkpoints import CheckpointError, checkpoint_family

        try:
            return checkpoint_family(resolve_path(source, base_dir))
        except CheckpointError:
            pass  # the suite check has said so; the name is the last hint
    if kind == "folder":
        index = resolve_path(source, base_dir) / "model_index.json"
        try:
            spec = by_pipeline_class(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
            if spec is not None:
                return spec.name
        except (OSError, ValueError, AttributeError, RecursionError):
            pass
    if kind == "hub":  # what the cached model_index.json says beats any reading of the name
        cached = _cached_pipeline_class(source)
        if cached is not None:
            spec = by_pipeline_class(cached)
            if spec is None:
                raise UnknownFamily(f"'{source}' is a {cached}, which diffbench has no family for (known: "
                                    f"{', '.join(FAMILIES)})")
            return spec.name
    return guess_from_name(source)


def _cached_pipeline_class(repo_id: str) -> str | None:
    """The `_class_name` of a Hub id's model_index.json where the local cache holds it."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "model_index.json")
    if not isinstance(found, str):
        return None
    try:
        with open(found, encoding="utf-8") as handle:
            name = json.loads(handle.read(MODEL_INDEX_MAX_BYTES)).get("_class_name")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return name if isinstance(name, str) else None


def builtin_defaults(source: str) -> dict[str, Any]:
    """Per-model defaults a built-in or synthetic model brings (resolution, guidance)."""
    if source.startswith(BUILTIN_PREFIX) and source[len(BUILTIN_PREFIX):] in BUILTINS:
        return dict(BUILTINS[source[len(BUILTIN_PREFIX):]].defaults)
    if source.startswith(SYNTHETIC_PREFIX) and source[len(SYNTHETIC_PREFIX):] in SYNTHETIC:
        return dict(SYNTHETIC[source[len(SYNTHETIC_PREFIX):]].defaults)
    return {}


def load_pipeline(model: dict[str, Any], torch_dtype: Any, base_dir: Path, build_device: Any = "cpu",
                  fill_device: Any = None) -> Any:
    """Load a pipeline in `torch_dtype`, on the CPU; the caller places it on its device.

    Synthetic models are instead built directly on `build_device` (where they will run),
    their random weights drawn on `fill_device` (default: `build_device`), since initialising
    billions of random weights on a CPU would take minutes.
    """
    import diffusers

    source: str = model["source"]
    kind = source_kind(source, base_dir)
    if kind == "synthetic":
        from .synthetic import build_pipeline

        return build_pipeline(source[len(SYNTHETIC_PREFIX):], build_device, torch_dtype, fill_device=fill_device)
    # Newer diffusers renamed torch_dtype to dtype (the old name warns); older ones know only torch_dtype.
    from diffusers.utils import deprecation_utils

    dtype_key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
    common: dict[str, Any] = {dtype_key: torch_dtype}
    if kind == "builtin":
        from .builtin import builtin_path

        name = source[len(BUILTIN_PREFIX):]
        extra = {component: None for component in BUILTINS[name].absent_components}
        return diffusers.DiffusionPipeline.from_pretrained(
            builtin_path(name), local_files_only=True, use_safetensors=True, **extra, **common)
    if kind == "file" and model.get("base"):
        return _with_denoiser_file(model, torch_dtype, common, base_dir)
    if kind == "file":
        pipeline_class = getattr(diffusers, family(model["family"]).pipeline_class)
        config = model.get("config")
        if config and not HUB_ID.match(config):
            config = str(resolve_path(config, base_dir))
        return pipeline_class.from_single_file(str(resolve_path(source, base_dir)), config=config,
                                               local_files_only=offline(), **common)
    target = str(resolve_path(source, base_dir)) if kind == "folder" else source
    return diffusers.DiffusionPipeline.from_pretrained(
        target,
        revision=model.get("revision"),
        variant=model.get("variant"),
        use_safetensors=not model.get("allow_pickle", False),
        trust_remote_code=bool(model.get("trust_remote_code", False)),
        **common,
    )


def _with_denoiser_file(model: dict[str, Any], torch_dtype: Any, common: dict[str, Any], base_dir: Path) -> Any:
    """The base pipeline with its denoiser read from the model's file instead of its own weights:
    the file first (its config from the base), then the rest, so the base's own denoiser is never
    loaded. A .gguf stays quantized in memory (diffusers' GGUF layers dequantize as they compute)."""
    import diffusers

    base = str(model["base"])
    kind = source_kind(base, base_dir)
    name = family(model["family"]).denoiser
    if kind == "builtin":
        from .builtin import builtin_path

        builtin = base[len(BUILTIN_PREFIX):]
        where: str = str(builtin_path(builtin))
        extra: dict[str, Any] = {component: None for component in BUILTINS[builtin].absent_components}
    else:
        where = str(resolve_path(base, base_dir)) if kind == "folder" else base
        extra = {"revision": model.get("revision"), "variant": model.get("variant")}
    local = offline() or kind != "hub"
    index = diffusers.DiffusionPipeline.load_config(where, local_files_only=local, revision=extra.get("revision"))
    problem = denoiser_entry_problem(index, f"{base}/model_index.json")
    if problem:  # a Hub base is only seen here: nothing it names is imported unchecked
        raise ValueError(problem)
    library, class_name = index[name]
    denoiser_class = getattr(diffusers, class_name, None)
    if denoiser_class is None:
        raise ValueError(f"{base}/model_index.json: diffusers has no class {class_name!r} (a newer diffusers?)")
    path = resolve_path(str(model["source"]), base_dir)
    options: dict[str, Any] = {}
    if path.suffix.lower() == GGUF_SUFFIX:
        options["quantization_config"] = diffusers.GGUFQuantizationConfig(compute_dtype=torch_dtype)
    denoiser = denoiser_class.from_single_file(str(path), config=where, subfolder=name, local_files_only=local,
                                               **options, **common)
    return diffusers.DiffusionPipeline.from_pretrained(where, local_files_only=local, use_safetensors=True,
                                                       **{name: denoiser}, **extra, **common)


def prequantized_format(model: dict[str, Any], base_dir: Path) -> str | None:
    """The weight format of a .gguf denoiser file ('Q8_0'), or None for any other source."""
    if not str(model.get("source", "")).lower().endswith(GGUF_SUFFIX):
        return None
    from .gguf_header import gguf_tensors, weight_format

    return weight_format(gguf_tensors(resolve_path(str(model["source"]), base_dir)))
