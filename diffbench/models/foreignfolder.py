"""The loader policy for a third-party checkpoint folder (a CLIP model a suite or `score` names).

transformers reads such a folder's JSON files and may offer to run Python the folder ships
(`auto_map`), read pickles, or allocate whatever dimensions its config states. Nothing of that is
left to transformers: before any loader sees the folder, this module reads every file it would
read, with the limits of a real checkpoint, and refuses in one line a folder that asks to run its
own code, holds weights other than safetensors, or states what no real CLIP model has. Needs
neither torch nor transformers, so validate and plan call it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..contract.files import FileError, open_regular
from ..errors import one_line
from .checkpoints import CheckpointError, safetensors_header

MAX_JSON_FILES = 64
MAX_JSON_BYTES = 64 * 2**20  # a tokenizer.json of a large vocabulary is a few MiB
MAX_TEXT_BYTES = 64 * 2**20
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"

# Bounds on the dimensions a CLIP config states: the largest public CLIP (ViT-bigG/14) has
# width 1664, 48 layers, MLP 8192, 256 positions, 224-pixel input; these leave generous room and
# refuse what would allocate without end (a width of 10**9) before transformers builds anything.
DIMENSION_BOUNDS: dict[str, int] = {
    "hidden_size": 16384, "intermediate_size": 131072, "num_hidden_layers": 256, "num_attention_heads": 1024,
    "vocab_size": 1_000_000, "max_position_embeddings": 16384, "image_size": 4096, "patch_size": 4096,
    "projection_dim": 16384, "num_channels": 16,
}


class FolderPolicyError(ValueError):
    """A checkpoint folder diffbench will not hand to a loader, said in one line."""


def folder_problem(folder: Path, what: str = "checkpoint folder") -> str | None:
    """Why `folder` may not be loaded, in one line, or None when every file a loader reads passes."""
    try:
        check_folder(folder)
    except (FolderPolicyError, CheckpointError, FileError) as exc:
        return f"{what} '{folder}': {exc}"
    return None


def check_folder(folder: Path) -> None:
    """Raise FolderPolicyError (or CheckpointError, FileError) for the first file that fails."""
    documents = dict(_json_documents(folder))
    for name, document in documents.items():
        where = _find_key(document, "auto_map")
        if where is not None:
            raise FolderPolicyError(f"{name} asks to run code shipped in the folder ({where}); diffbench never runs "
                                    "a checkpoint's code: use a folder without auto_map")
    config = documents.get("config.json")
    if config is None:
        raise FolderPolicyError("holds no config.json (a transformers CLIPModel folder is needed)")
    _check_clip_config(config)
    _check_weights(folder, documents.get(WEIGHTS_INDEX))
    _check_tokenizer_texts(folder, documents.get("vocab.json"))


def _json_documents(folder: Path) -> Iterator[tuple[str, Any]]:
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".json"))
    if len(files) > MAX_JSON_FILES:
        raise FolderPolicyError(f"{len(files)} JSON files; a checkpoint has a handful (at most {MAX_JSON_FILES})")
    for path in files:
        yield path.name, _read_json(path)


def _read_json(path: Path) -> Any:
    try:
        with open_regular(path, MAX_JSON_BYTES) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except RecursionError:
        raise FolderPolicyError(f"{path.name} nests too deep to be a checkpoint's file") from None
    except UnicodeDecodeError:
        raise FolderPolicyError(f"{path.name} is not UTF-8 text") from None
    except ValueError as exc:
        raise FolderPolicyError(f"{path.name} is not JSON ({one_line(str(exc))[:120]})") from None
    except OSError as exc:
        raise FolderPolicyError(f"{path.name} cannot be read ({exc.strerror or exc})") from None


def _find_key(document: Any, key: str) -> str | None:
    """The path of the first `key` anywhere in a JSON document (iterative: no recursion limit)."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            if key in node:
                return f"{where}.{key}".lstrip(".")
            stack.extend((value, f"{where}.{name}") for name, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{i}]") for i, value in enumerate(node))
    return None


def _check_clip_config(config: Any) -> None:
    if not isinstance(config, dict):
        raise FolderPolicyError("config.json is not a table")
    model_type = config.get("model_type")
    if model_type != "clip":
        raise FolderPolicyError(f"config.json describes model_type {one_line(repr(model_type))[:40]}, not 'clip' "
                                "(a transformers CLIPModel folder is needed)")
    _check_dimensions(config, "config.json")
    for part in ("text_config", "vision_config"):
        sub = config.get(part)
        if sub is None:
            continue
        if not isinstance(sub, dict):
            raise FolderPolicyError(f"config.json: {part} is not a table")
        _check_dimensions(sub, f"config.json: {part}")
        heads, width = sub.get("num_attention_heads"), sub.get("hidden_size")
        if isinstance(heads, int) and isinstance(width, int) and width % heads:
            raise FolderPolicyError(f"config.json: {part}.hidden_size {width} is not divisible by its "
                                    f"num_attention_heads {heads}")


def _check_dimensions(table: dict[str, Any], where: str) -> None:
    for field, bound in DIMENSION_BOUNDS.items():
        if field not in table:
            continue
        value = table[field]
        if type(value) is not int or not 1 <= value <= bound:
            raise FolderPolicyError(f"{where}.{field} is {one_line(repr(value))[:40]}; a whole number from 1 to "
                                    f"{bound} is allowed")


def _check_weights(folder: Path, index: Any) -> None:
    single = folder / WEIGHTS
    if single.exists():
        safetensors_header(single)
        return
    if index is None:
        raise FolderPolicyError(f"holds no {WEIGHTS}: only safetensors weights are read (never a pickle)")
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FolderPolicyError(f"{WEIGHTS_INDEX} has no weight_map table")
    shards = set(weight_map.values())
    for shard in shards:
        if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard in {".", ".."} or \
                not shard.endswith(".safetensors"):
            raise FolderPolicyError(f"{WEIGHTS_INDEX} names the shard {one_line(repr(shard))[:60]}; a .safetensors "
                                    "file in the folder is needed")
        safetensors_header(folder / shard)


def _check_tokenizer_texts(folder: Path, vocab: Any) -> None:
    if vocab is not None and not (isinstance(vocab, dict) and
                                  all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in vocab.items())):
        raise FolderPolicyError("vocab.json is not a table of tokens to non-negative ids")
    merges = folder / "merges.txt"
    if merges.exists():
        try:
            with open_regular(merges, MAX_TEXT_BYTES) as handle:
                handle.read().decode("utf-8")
        except UnicodeDecodeError:
            raise FolderPolicyError("merges.txt is not UTF-8 text") from None
