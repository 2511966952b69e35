"""What one call of a model asks of a GPU, counted on the meta device: no weights, no GPU, seconds.

Every aten operator a forward pass dispatches is seen by a dispatch mode; on the meta device
nothing is computed, only shapes flow. Each operator that launches a kernel on CUDA becomes one
`OpCost`: its FLOPs (matmul, convolution, attention), the bytes it reads and writes, and its
kind. Views (reshape, transpose, expand...) launch nothing and are left out. Scaled dot-product
attention is taken whole (one fused kernel on CUDA) before it can decompose into the matmuls and
softmax of the math path that the meta device would otherwise run.

These are the inputs of the projection model (analysis/projection.py): a card's time for an
operator is bounded by its FLOPs over the card's achievable compute and its bytes over the
card's achievable bandwidth, and every launch costs the host a dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Operators that launch no kernel: they only describe existing memory anew, or allocate it.
VIEW_OPS = frozenset({
    "view", "_unsafe_view", "t", "transpose", "expand", "permute", "unsqueeze", "squeeze", "split",
    "split_with_sizes", "slice", "select", "as_strided", "alias", "detach", "unbind", "chunk", "narrow",
    "_reshape_alias", "lift_fresh", "empty", "empty_like", "empty_strided", "new_empty", "view_as_real",
    "view_as_complex", "unflatten", "flatten", "reshape", "movedim", "_unsafe_split", "diagonal",
    "squeeze_", "unsqueeze_", "t_", "transpose_", "resize_", "set_", "_local_scalar_dense", "item",
    "is_same_size", "sym_size", "sym_stride", "sym_numel", "size", "stride", "numel", "dim",
})
# View-listed operators that do allocate (their memory counts in the activation peak).
ALLOCATING_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty"})
MATMUL_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_scaled_mm"})
CONVOLUTION_OPS = frozenset({"convolution", "_convolution", "cudnn_convolution", "conv2d", "conv3d"})
KINDS = ("matmul", "convolution", "attention", "memory-bound")


@dataclass(frozen=True)
class OpCost:
    kind: str  # one of KINDS
    flops: float
    bytes: float
    single: bool = False  # computed in fp32 (TF32 tensor cores at best): half the half-precision rate


@dataclass
class CallCounts:
    """One call of a module: its kernel-launching operators, and the most memory the tensors it
    created held at once (its activation peak, weights and inputs excluded)."""

    ops: list[OpCost]
    peak_bytes: float = 0.0

    @property
    def launches(self) -> int:
        return len(self.ops)

    def flops(self, kind: str | None = None) -> float:
        return float(sum(op.flops for op in self.ops if kind is None or op.kind == kind))

    def bytes(self, kind: str | None = None) -> float:
        return float(sum(op.bytes for op in self.ops if kind is None or op.kind == kind))

    def count(self, kind: str) -> int:
        return sum(1 for op in self.ops if op.kind == kind)

    def summary(self) -> dict[str, Any]:
        return {"launches": self.launches,
                **{kind: {"ops": self.count(kind), "flops": self.flops(kind), "bytes": self.bytes(kind)}
                   for kind in KINDS}}


def _tensors(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _nbytes(tensors: list[Any]) -> float:
    seen: set[int] = set()
    total = 0.0
    for tensor in tensors:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def _attention_flops(query: Any, key: Any, value: Any) -> float:
    """Q·Kᵀ and P·V: 2·(batch·heads)·Lq·Lk·(d + d_v)."""
    groups = query.numel() // (query.shape[-2] * query.shape[-1])
    return float(2.0 * groups * query.shape[-2] * key.shape[-2] * (query.shape[-1] + value.shape[-1]))


def count_call(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None,
               channels_last: bool = False) -> CallCounts:
    """The operators of module(*args, **kwargs), run on the meta device (module and inputs on meta).

    `channels_last=False` (diffusers' default layout) adds, for every convolution, the two layout
    transforms cuDNN runs around an NCHW half-precision convolution on tensor cores: memory-bound
    copies of its input and output, two more launches (seen on an H200, docs/gpu-validation.md §7).
    """
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    ops: list[OpCost] = []
    live = _LiveTensors()
    owner = getattr(module, "__self__", module)  # a bound method (vae.decode): its module's weights
    if isinstance(owner, torch.nn.Module):
        live.existing([*owner.parameters(), *owner.buffers()])
    live.existing(_tensors(args) + _tensors(kwargs or {}))

    class Attention(TorchFunctionMode):
        def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                named: dict[str, Any] = {**kwargs, **dict(zip(("query", "key", "value"), args))}
                query, key, value = named["query"], named["key"], named["value"]
                out = torch.empty(*query.shape[:-1], value.shape[-1], dtype=query.dtype, device=query.device)
                ops.append(OpCost("attention", _attention_flops(query, key, value),
                                  _nbytes([query, key, value, out]), query.dtype == torch.float32))
                return out
            return func(*args, **kwargs)

    class Operators(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = func.overloadpacket.__name__
            if name not in VIEW_OPS or name in ALLOCATING_OPS:
                live.created(_tensors(out))
            if name in VIEW_OPS:
                return out
            moved = _nbytes(_tensors(args) + _tensors(kwargs) + _tensors(out))
            single = any(t.dtype == torch.float32 for t in _tensors(out))
            formula = flop_registry.get(func.overloadpacket)
            if name in MATMUL_OPS or name in CONVOLUTION_OPS:
                flops = float(formula(*args, **kwargs, out_val=out)) if formula else 0.0
                kind = "convolution" if name in CONVOLUTION_OPS else "matmul"
                ops.append(OpCost(kind, flops, moved, single))
                if kind == "convolution" and not channels_last:
                    layout = _nbytes([args[0]]) * 2, _nbytes(_tensors(out)) * 2  # read + write each
                    ops.extend(OpCost("memory-bound", 0.0, size) for size in layout)
            else:
                ops.append(OpCost("memory-bound", 0.0, moved))
            return out

    with torch.no_grad(), Attention(), Operators():  # type: ignore[no-untyped-call]
        result = module(*args, **(kwargs or {}))
    del result
    return CallCounts(ops, live.peak)


class _LiveTensors:
    """The bytes of the tensors a call created that are still alive, and their peak.

    Meta tensors are freed exactly when real ones would be (the last reference, a view included,
    goes), and torch keeps one Python object per storage while it lives: a finalizer on it says
    when its bytes are given back. What the caching allocator adds on top (rounding, fragmentation)
    is the measured margin's job (analysis/memoryneed.py)."""

    def __init__(self) -> None:
        self.alive: dict[int, int] = {}
        self.kept: list[Any] = []
        self.current = 0
        self.peak = 0.0

    def existing(self, tensors: list[Any]) -> None:
        """Storages that were there before the call (weights, inputs): never counted as created."""
        for tensor in tensors:
            storage = tensor.untyped_storage()
            self.kept.append(storage)  # held, so that its id stays its own for the whole call
            self.alive.setdefault(id(storage), 0)

    def created(self, tensors: list[Any]) -> None:
        import weakref

        for tensor in tensors:
            storage = tensor.untyped_storage()
            key = id(storage)
            if key in self.alive:
                continue
            size = int(storage.nbytes())
            self.alive[key] = size
            self.current += size
            self.peak = max(self.peak, float(self.current))
            weakref.finalize(storage, self._freed, key)

    def _freed(self, key: int) -> None:
        self.current -= self.alive.pop(key, 0)
