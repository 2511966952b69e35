"""Published offload timings from hosts other than this project's: what the transfer rules
(analysis/transfer.py) are checked against across hosts, never fitted on.

Each row is one published setup timed plain and with each offload mode on one host: the seconds a
mode adds over the plain call, against the bytes analysis/transfer.py counts for it, give that
host's rate (analysis/hostrates.py); `benchmarks/offload_check.py` prints them beside the H200's.
"""

from __future__ import annotations

from dataclasses import dataclass

SIMPLE_SDXL = ("Hugging Face blog 'Exploring simple optimizations for SDXL' (2023): A100 40GB, 4 images of 1024² per "
               "call, 50 steps, fp16 + SDPA, seconds per call: huggingface.co/blog/simple_sdxl_optimizations")
PASCAL_LAB = ("gperdrizet/unit-6-assignments, docs/data/{p100,gtx1070}/benchmark_results.json at commit 4a8cda4: one "
              "host with a Tesla P100 and a GTX 1070 (PCIe 3.0), fp16, 512x512, the pipeline's defaults, enable_model_"
              "cpu_offload / enable_sequential_cpu_offload; median of 3 calls: github.com/gperdrizet/unit-6-assignments")


@dataclass(frozen=True)
class PublishedOffload:
    gpu: str  # a name in hardware/gpus.py
    model: str  # a counted preset
    resolution: str
    batch_size: int
    steps: int
    guided: bool  # classifier-free guidance (SDXL Turbo runs without)
    walls: dict[str, float]  # offload mode ('none' for the plain call) -> seconds per call
    source: str
    note: str = ""

    @property
    def label(self) -> str:
        batch = f", batch {self.batch_size}" if self.batch_size != 1 else ""
        return f"{self.model}{'' if self.guided else ' (no CFG)'} {self.resolution}{batch}, {self.steps} steps, {self.gpu}"


PUBLISHED_OFFLOAD: tuple[PublishedOffload, ...] = (
    PublishedOffload("A100 40GB", "sdxl", "1024x1024", 4, 50, True,
                     {"none": 11.4130, "model": 16.0822, "sequential": 67.0340}, SIMPLE_SDXL),
    PublishedOffload("P100", "sd15", "512x512", 1, 30, True, {"none": 8.567, "model": 10.422, "sequential": 37.797},
                     PASCAL_LAB, "SD 1.4"),
    PublishedOffload("P100", "sd21", "512x512", 1, 30, True, {"none": 7.799, "model": 9.484, "sequential": 38.769},
                     PASCAL_LAB, "SD 2.1 base"),
    PublishedOffload("P100", "sdxl", "512x512", 1, 30, True, {"none": 14.114, "model": 18.238, "sequential": 74.877},
                     PASCAL_LAB),
    PublishedOffload("P100", "sdxl", "512x512", 1, 4, False, {"none": 1.304, "model": 5.526, "sequential": 10.505},
                     PASCAL_LAB, "SDXL Turbo"),
    PublishedOffload("GTX 1070", "sd15", "512x512", 1, 30, True, {"none": 16.627, "model": 18.631, "sequential": 40.450},
                     PASCAL_LAB, "SD 1.4"),
    PublishedOffload("GTX 1070", "sd21", "512x512", 1, 30, True, {"none": 15.474, "model": 17.240, "sequential": 41.009},
                     PASCAL_LAB, "SD 2.1 base"),
)
