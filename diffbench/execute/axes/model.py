"""model (at load, first): build the pipeline from the model's source."""

from __future__ import annotations

from pathlib import Path

from . import Loading


def at_load(loading: Loading) -> None:
    from ...models.sources import load_pipeline, prequantized_format
    from ..configure import NotApplicable, torch_dtype

    settings, runtime = loading.settings, loading.runtime
    quantized = settings.get("quantize") not in (None, "none")
    loading.file_format = prequantized_format(loading.model, Path(loading.base_dir))
    if loading.file_format is not None and quantized:
        raise NotApplicable(f"the denoiser is already quantized ({loading.file_format}, from its .gguf file); quantize "
                            f"'{settings['quantize']}' applies to full-precision weights: leave it none here")
    # With offloading the weights live in host RAM: synthetic models are then built there. So they
    # are when they get quantized: the full-precision weights must never have to fit the card.
    build_device = runtime.device if settings["offload"] == "none" and not quantized else "cpu"
    loading.pipe = load_pipeline(loading.model, torch_dtype(runtime.dtype_name), Path(loading.base_dir),
                                 build_device, fill_device=runtime.device)
