"""Published and measured peak memory figures: what the counted memory need (analysis/memoryneed.py)
is checked against, never fitted on except where `fitted` says so.

Each figure is torch's allocated peak of one image (torch.cuda.max_memory_allocated), in GiB, with
its source and the settings that produced it. `benchmarks/memory_check.py` prints each against the
count; tests/test_counted_answers.py holds every one within ±20%.
"""

from __future__ import annotations

from dataclasses import dataclass

QUANT_BENCH = ("derekl35/diffusers-quantization-benchmarks, diffusers_quantization_benchmark.csv, 'Peak Memory GB' "
               "column (FLUX.1-dev, transformer quantized, torch.cuda.max_memory_allocated in GiB: its bf16 'Memory "
               "After Loading' 31.447 is the 33.7e9 bytes of the bf16 weights): "
               "huggingface.co/datasets/derekl35/diffusers-quantization-benchmarks")
H200_RUNS = "this project's H200 runs, docs/gpu-runs (docs/gpu-validation.md §4, §6, §8)"


@dataclass(frozen=True)
class PublishedMemory:
    model: str  # a counted preset
    resolution: str
    dtype: str
    offload: str
    quantize: str
    allocated_gib: float
    source: str
    fitted: bool = False  # the activation factor was fitted on this figure (memoryneed.ACTIVATION_FACTOR)
    guidance_scale: float | None = None  # None: the preset's default


PUBLISHED_MEMORY: tuple[PublishedMemory, ...] = (
    PublishedMemory("flux-dev", "1024x1024", "bf16", "none", "none", 36.166, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "model", "none", 23.271, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "none", "torchao:int8", 21.482, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "model", "torchao:int8", 12.189, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "none", "quanto:int8", 21.814, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "model", "quanto:int8", 12.166, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "none", "torchao:fp8", 21.488, QUANT_BENCH),
    PublishedMemory("flux-dev", "1024x1024", "bf16", "model", "quanto:fp8", 12.332, QUANT_BENCH),
    PublishedMemory("sdxl", "1024x1024", "fp16", "none", "none", 11.52, H200_RUNS, fitted=True),
    PublishedMemory("sd35-medium", "1024x1024", "bf16", "none", "none", 17.89, H200_RUNS, fitted=True),
    PublishedMemory("flux-schnell", "1024x1024", "bf16", "none", "none", 34.08, H200_RUNS, fitted=True),
    PublishedMemory("sdxl", "1024x1024", "fp16", "model", "none", 6.22, H200_RUNS),
    PublishedMemory("sdxl", "1024x1024", "fp16", "group-leaf", "none", 5.11, H200_RUNS),
    PublishedMemory("sdxl", "1024x1024", "fp16", "group-block", "none", 5.11, H200_RUNS),
    PublishedMemory("sdxl", "1024x1024", "fp16", "sequential", "none", 4.80, H200_RUNS),
    PublishedMemory("sdxl", "1024x1024", "fp16", "none", "quanto:int8", 9.10, H200_RUNS),
    PublishedMemory("sdxl", "1024x1024", "fp16", "none", "bnb:nf4", 8.38, H200_RUNS),
)
