"""quantize (at load): weight quantization of the denoiser (and with @all the text encoders)."""

from __future__ import annotations

import importlib
from typing import Any

from ...rules.applicability import quantization_problem
from ..configure import NotApplicable, stored_bytes
from . import Loading


def at_load(loading: Loading) -> None:
    """Quantize before the pipeline is placed (or say what a .gguf file's weights are), then record
    the denoiser's weights as they are held, quantized or not."""
    from ...measure.probe import denoiser_of

    pipe, runtime = loading.pipe, loading.runtime
    runtime.quantization = (file_quantization(pipe, loading.file_format) if loading.file_format is not None
                            else apply_quantization(pipe, loading.settings.get("quantize"), runtime.device))
    runtime.denoiser_bytes = stored_bytes(denoiser_of(pipe))


def check_quantization_device(wanted: str | None, device: Any) -> None:
    """NotApplicable, before anything is loaded, for a quantization this cell's device cannot run."""
    problem = quantization_problem(wanted, getattr(device, "type", str(device or "cpu")))
    if problem:
        raise NotApplicable(problem)


def apply_quantization(pipe: Any, wanted: str | None, device: Any = None) -> dict[str, Any] | None:
    """Quantize the weights of the denoiser (and with @all the text encoders) of a loaded pipeline,
    before it is placed on its device. Returns what was done, for the record: the components, their
    bytes before and after, the seconds it took (load time, not generation time)."""
    import time

    from ...measure.probe import denoiser_name, denoiser_of
    from ...measure.workload import kept_module_names
    from ...rules.quantization import LIBRARIES, parse_quantization

    setting = parse_quantization(wanted or "none")
    if setting is None:
        return None
    check_quantization_device(wanted, device)
    module_name, package = LIBRARIES[setting.library]
    try:
        importlib.import_module(module_name)
    except ImportError:
        raise NotApplicable(f"quantize '{setting.text}' needs {package}, which is not installed "
                            f"(pip install {package}, or diffbench[quantization])") from None
    components = {denoiser_name(pipe): denoiser_of(pipe)}
    if setting.scope == "all":
        components.update({name: getattr(pipe, name) for name in ("text_encoder", "text_encoder_2", "text_encoder_3")
                           if getattr(pipe, name, None) is not None})
    before = {name: stored_bytes(module) for name, module in components.items()}
    started = time.perf_counter()
    try:
        for module in components.values():
            kept = kept_module_names(module)  # as transformers' quantizers leave them (T5's wo)
            if setting.library == "bnb":
                _bitsandbytes_module(module, setting.format, device, kept)
            else:
                _quantize_module(module, setting.library, setting.format, kept)
    except (ImportError, RuntimeError, ValueError, TypeError, NotImplementedError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NotApplicable(f"quantize '{setting.text}' cannot apply here: {type(exc).__name__}: {first}") from None
    return {"quantize": setting.text, "components": sorted(components), "quantize_s": time.perf_counter() - started,
            "weight_bytes_before": sum(before.values()),
            "weight_bytes_after": sum(stored_bytes(module) for module in components.values())}


def file_quantization(pipe: Any, file_format: str) -> dict[str, Any]:
    """The record of a denoiser that came quantized from its file (a .gguf): its format and the
    bytes it holds in memory. No time: nothing was quantized here."""
    from ...measure.probe import denoiser_name, denoiser_of

    return {"quantize": f"gguf:{file_format}", "components": [denoiser_name(pipe)], "quantize_s": 0.0,
            "weight_bytes_after": stored_bytes(denoiser_of(pipe))}


def _bitsandbytes_module(module: Any, fmt: str, device: Any, kept: tuple[str, ...] = ()) -> None:
    """Every linear layer of `module` but the `kept` ones as bitsandbytes' 4-bit NF4 or 8-bit
    layer, quantized by moving it onto the CUDA device (as diffusers' own bitsandbytes loading
    does); placement and offload then move the quantized weights like any others."""
    import bitsandbytes as bnb
    import torch

    for name, child in list(module.named_children()):
        if name in kept:
            continue
        if not isinstance(child, torch.nn.Linear):
            _bitsandbytes_module(child, fmt, device, kept)
            continue
        bias = child.bias is not None
        if fmt == "nf4":
            layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=bias,
                                      compute_dtype=child.weight.dtype, quant_type="nf4")
            layer.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4")
        else:
            layer = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=bias, has_fp16_weights=False)
            layer.weight = bnb.nn.Int8Params(child.weight.data, requires_grad=False, has_fp16_weights=False)
        if bias:
            layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
        setattr(module, name, layer.to(device))


def _quantize_module(module: Any, library: str, fmt: str, kept: tuple[str, ...] = ()) -> None:
    from ...measure.workload import is_kept

    if library == "quanto":
        from optimum import quanto

        weights = {"int8": quanto.qint8, "int4": quanto.qint4, "fp8": quanto.qfloat8}[fmt]
        excluded = [name for name, _ in module.named_modules() if name and is_kept(name, kept)]
        quanto.quantize(module, weights=weights, exclude=excluded or None)
        quanto.freeze(module)  # the quantized weights replace the float ones (no float copy kept)
        return
    from torchao import quantization as ao

    config = {"int8": ao.Int8WeightOnlyConfig, "fp8": ao.Float8WeightOnlyConfig,
              "int4": ao.Int4WeightOnlyConfig}[fmt]()
    ao.quantize_(module, config, filter_fn=lambda sub, name: _is_linear(sub) and not is_kept(name, kept))


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)
