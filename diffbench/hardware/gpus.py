"""Specifications of the GPUs people run diffusion models on, each figure with its public source.

`fp16_tflops` is peak dense FP16/BF16 tensor throughput with FP32 accumulation, the mode
PyTorch's fp16/bf16 matmuls use. GeForce cards run it at half their FP16-accumulate rate
(the larger figure in their marketing); data-centre cards at full rate. Sparsity is never
counted; cards without tensor cores (Pascal) carry their FP32 rate, at which such matmuls run
there. Bandwidth is in GB/s (10^9 bytes), VRAM in bytes, board power in watts.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ..errors import DiffbenchError

GIB = 2**30

PASCAL_GEFORCE = ("NVIDIA GeForce GTX 10-series specifications (CUDA cores x 2 x boost clock; memory data rate x bus "
                  "width)")
P40 = "NVIDIA Tesla P40 datasheet (FP32 12 TFLOPS, 346 GB/s, 24 GB, 250 W)"
P100 = "NVIDIA Tesla P100 PCIe datasheet (16 GB: FP32 9.3, FP16 18.7 TFLOPS, 732 GB/s, 250 W)"
TURING = "NVIDIA Turing GPU Architecture whitepaper (2018), Appendix A, reference boost clocks"
AMPERE = "NVIDIA Ampere GA102 GPU Architecture whitepaper (2020/2021), Appendix A"
ADA = "NVIDIA Ada Lovelace GPU Architecture whitepaper (2022/2023), Appendix A"
BLACKWELL = "NVIDIA RTX Blackwell GPU Architecture whitepaper (2025), Appendix A"
A10 = "NVIDIA A10 Tensor Core GPU datasheet"
A100 = "NVIDIA A100 Tensor Core GPU datasheet"
L4 = "NVIDIA L4 Tensor Core GPU datasheet"
L40S = "NVIDIA L40S GPU datasheet"
H100 = "NVIDIA H100 Tensor Core GPU datasheet"
H200 = "NVIDIA H200 Tensor Core GPU datasheet"
V100 = "NVIDIA Tesla V100 GPU datasheet (SXM2)"
T4 = "NVIDIA T4 Tensor Core GPU datasheet"
RTX_A5000 = "NVIDIA RTX A5000 datasheet (tensor 222.2 TFLOPS with sparsity)"
RTX_A4000 = "NVIDIA RTX A4000 datasheet (tensor 153.4 TFLOPS with sparsity)"
A40 = "NVIDIA A40 datasheet (tensor 299.4 TFLOPS with sparsity)"

PCIE_X16_GBS = {3: 15.75, 4: 31.5, 5: 63.0}  # x16 payload GB/s (PCIe 3.0: 8 GT/s x 16 x 128/130; each doubles)


@dataclass(frozen=True)
class GpuArchitecture:
    """Everything diffbench knows about one GPU architecture, in one record: adding one is this
    record (and its cards in GPUS), nothing else.

    `factor` says how the projection model (analysis/stepmodel.py) gets its r_a: "fitted" on the
    published figures of its cards (hardware/published.py; with none, a projection to it is
    refused), "anchor" for Hopper (1 by definition: the H200 measured the model), or "borrows NAME"
    to take another architecture's until figures of its own exist. The cards that calibrate it are
    its cards with published figures (`calibrating_cards`)."""

    name: str
    pcie_generation: int  # what offloaded weights cross (the whitepapers and datasheets of its cards)
    factor: str
    specs: tuple[str, ...]  # the spec sources whose cards are of this architecture
    bf16_tensor: bool = True  # its tensor cores multiply bf16 (Ampere on); before, bf16 runs without them

    @property
    def borrows(self) -> str | None:
        return self.factor.removeprefix("borrows ") if self.factor.startswith("borrows ") else None


# GA100 (A100) has another SM than the GA10x chips of the other Ampere cards: it is its own record.
GPU_ARCHITECTURES: tuple[GpuArchitecture, ...] = (
    GpuArchitecture("Pascal", 3, "fitted", (PASCAL_GEFORCE, P40, P100), bf16_tensor=False),
    GpuArchitecture("Volta", 3, "fitted", (V100,), bf16_tensor=False),
    GpuArchitecture("Turing", 3, "fitted", (TURING, T4), bf16_tensor=False),
    GpuArchitecture("Ampere", 4, "fitted", (AMPERE, A10, RTX_A5000, RTX_A4000, A40)),
    GpuArchitecture("Ampere GA100", 4, "fitted", (A100,)),
    GpuArchitecture("Ada", 4, "fitted", (ADA, L4, L40S)),
    GpuArchitecture("Hopper", 5, "anchor", (H100, H200)),
    # Blackwell's consumer cards are Ada's design grown: until a published figure calibrates them
    GpuArchitecture("Blackwell", 5, "borrows Ada", (BLACKWELL,)),
)
ARCHITECTURE_OF_NAME = {a.name: a for a in GPU_ARCHITECTURES}
ARCHITECTURES = {source: a.name for a in GPU_ARCHITECTURES for source in a.specs}  # spec source -> architecture


class UnknownArchitecture(DiffbenchError):
    """A card whose spec source no architecture record claims: a table entry added without its record."""


def architecture_record(name: str) -> GpuArchitecture:
    if name not in ARCHITECTURE_OF_NAME:
        raise UnknownArchitecture(f"no GPU architecture record '{name}': add a GpuArchitecture to "
                                  "diffbench/hardware/gpus.py with its PCIe generation and how its factor is had")
    return ARCHITECTURE_OF_NAME[name]


@dataclass(frozen=True)
class GpuSpec:
    name: str
    vram_gib: float
    bandwidth_gbs: float
    fp16_tflops: float
    board_power_w: float
    source: str
    note: str = ""

    @property
    def vram_bytes(self) -> int:
        return int(self.vram_gib * GIB)

    @property
    def architecture(self) -> str:
        if self.source not in ARCHITECTURES:
            raise UnknownArchitecture(f"the {self.name}'s spec source '{self.source[:60]}' belongs to no GPU architecture "
                                      "record: add it to that architecture's specs in diffbench/hardware/gpus.py")
        return ARCHITECTURES[self.source]

    @property
    def bf16_tensor(self) -> bool:
        return architecture_record(self.architecture).bf16_tensor

    @property
    def link_gbs(self) -> float:
        """Host-to-device bandwidth of its PCIe link, x16 (what offloaded weights cross every step)."""
        return PCIE_X16_GBS[architecture_record(self.architecture).pcie_generation]


# Measured on a V100 with cuBLAS (github.com/lablup/mlxcel, issue 1654): bf16 GEMMs reach 9.6 TFLOP/s
# where fp16 reaches 95-100 and fp32 14.0. The step model counts tensor-core work, not that.
NO_BF16_EVIDENCE = "on a V100 9.6 TFLOP/s against 95-100: github.com/lablup/mlxcel issue 1654"


def dtype_refusal(card: GpuSpec, dtype: str) -> str | None:
    """Why `dtype` cannot be projected on `card`, or None: bf16 on a card whose tensor cores lack it."""
    if dtype != "bf16" or card.bf16_tensor:
        return None
    return (f"the {card.name} ({card.architecture}) has no bf16 tensor cores: bf16 matmuls run without them, many times "
            f"slower than fp16 ({NO_BF16_EVIDENCE}), which the step model does not count; fp16 runs on them "
            "(--dtype fp16: check the pictures, some models' activations overflow fp16)")


GPUS: tuple[GpuSpec, ...] = (
    # Pascal has no tensor cores, and PyTorch's fp16 matmuls and convolutions accumulate in FP32, so
    # they run at the FP32 rate: that is the figure here, not GP100's FP16 (half2) rate nor GP104's 1/64.
    GpuSpec("GTX 1060", 6, 192, 4.4, 120, PASCAL_GEFORCE, "6 GB: 1280 cores at 1708 MHz boost; 8 Gbps GDDR5, 192-bit"),
    GpuSpec("GTX 1070", 8, 256, 6.5, 150, PASCAL_GEFORCE, "1920 cores at 1683 MHz boost; 8 Gbps GDDR5, 256-bit"),
    GpuSpec("GTX 1080", 8, 320, 8.9, 180, PASCAL_GEFORCE, "2560 cores at 1733 MHz boost; 10 Gbps GDDR5X, 256-bit"),
    GpuSpec("GTX 1080 Ti", 11, 484, 11.3, 250, PASCAL_GEFORCE, "3584 cores at 1582 MHz boost; 11 Gbps GDDR5X, 352-bit"),
    GpuSpec("RTX 2060", 6, 336, 25.8, 160, TURING, "FP16-acc 51.6, from the RTX 2060 launch specifications"),
    GpuSpec("RTX 2070", 8, 448, 29.9, 175, TURING),
    GpuSpec("RTX 2080", 8, 448, 40.3, 215, TURING),
    GpuSpec("RTX 2080 Ti", 11, 616, 53.8, 250, TURING),
    GpuSpec("RTX 3060", 12, 360, 25.6, 170, AMPERE),
    GpuSpec("RTX 3060 Ti", 8, 448, 32.4, 200, AMPERE),
    GpuSpec("RTX 3070", 8, 448, 40.6, 220, AMPERE),
    GpuSpec("RTX 3080", 10, 760, 59.5, 320, AMPERE),
    GpuSpec("RTX 3080 Ti", 12, 912, 68.2, 350, AMPERE),
    GpuSpec("RTX 3090", 24, 936, 71.0, 350, AMPERE),
    GpuSpec("RTX 3090 Ti", 24, 1008, 80.0, 450, AMPERE),
    GpuSpec("RTX 4060", 8, 272, 30.3, 115, ADA),
    GpuSpec("RTX 4060 Ti", 8, 288, 44.2, 160, ADA, "a 16 GB model exists: use vram_limit 16GiB for it"),
    GpuSpec("RTX 4070", 12, 504, 58.4, 200, ADA),
    GpuSpec("RTX 4070 Ti", 12, 504, 80.2, 285, ADA),
    GpuSpec("RTX 4080", 16, 716.8, 97.5, 320, ADA),
    GpuSpec("RTX 4090", 24, 1008, 165.2, 450, ADA),
    GpuSpec("RTX 5080", 16, 960, 112.6, 360, BLACKWELL),
    GpuSpec("RTX 5090", 32, 1792, 209.5, 575, BLACKWELL),
    # workstation cards: full-rate FP32 accumulation, like the data-centre ones (half the sparse figure)
    GpuSpec("RTX A4000", 16, 448, 76.7, 140, RTX_A4000),
    GpuSpec("RTX A5000", 24, 768, 111.1, 230, RTX_A5000),
    GpuSpec("RTX A6000", 48, 768, 154.8, 300, AMPERE, "the GA102 whitepaper's RTX A6000 column"),
    GpuSpec("RTX 6000 Ada", 48, 960, 364.2, 300, ADA, "the Ada whitepaper's RTX 6000 column"),
    GpuSpec("A40", 48, 696, 149.7, 300, A40),
    GpuSpec("P40", 24, 346, 11.8, 250, P40),
    GpuSpec("P100", 16, 732, 9.3, 250, P100, "PCIe, 16 GB; the 12 GB card has 549 GB/s; SXM2 runs 10.6 TFLOPS at 300 W"),
    GpuSpec("V100", 16, 900, 125.0, 300, V100, "SXM2; a 32 GB model exists"),
    GpuSpec("T4", 16, 320, 65.0, 70, T4),
    GpuSpec("A10", 24, 600, 125.0, 150, A10),
    GpuSpec("A100 40GB", 40, 1555, 312.0, 400, A100, "SXM4; the PCIe card runs at 250 W"),
    GpuSpec("A100 80GB", 80, 2039, 312.0, 400, A100, "SXM4; the PCIe card has 1935 GB/s at 300 W"),
    GpuSpec("L4", 24, 300, 121.0, 72, L4),
    GpuSpec("L40S", 48, 864, 362.0, 350, L40S),
    GpuSpec("H100 PCIe", 80, 2000, 756.0, 350, H100),
    GpuSpec("H100", 80, 3350, 989.0, 700, H100, "SXM5"),
    GpuSpec("H200", 141, 4800, 989.0, 700, H200, "SXM"),
)


def _tokens(name: str) -> set[str]:
    text = re.sub(r"(\d+)\s*gb", r"\1gb", name.lower())
    return set(re.findall(r"[a-z]+|\d+gb|\d+", text)) - {"nvidia", "geforce", "tesla"}


def _split(tokens: set[str]) -> tuple[set[str], set[str]]:
    sizes = {t for t in tokens if t.endswith("gb")}
    return tokens - sizes, sizes


@functools.lru_cache(maxsize=512)  # the cost model asks for the same few names many times
def find_gpu(name: str, vram_bytes: int | None = None) -> GpuSpec | None:
    """The spec for a GPU name as NVML or a person writes it ('NVIDIA GeForce RTX 3060 Ti',
    'rtx 3060', 'NVIDIA A100-SXM4-80GB'), or None.

    A spec matches when every word of its name appears in the given name; the most specific
    match wins ('RTX 3060 Ti' over 'RTX 3060', 'H100 PCIe' over 'H100'). Where a card comes
    in several memory sizes, a size in the name decides, else the nearest to `vram_bytes`.
    """
    given_words, given_sizes = _split(_tokens(name))
    matches = []
    for spec in GPUS:
        words, sizes = _split(_tokens(spec.name))
        if words <= given_words and (not given_sizes or not sizes or sizes <= given_sizes):
            matches.append((len(words), spec))
    if not matches:
        return None
    most = max(count for count, _ in matches)
    best = [spec for count, spec in matches if count == most]
    if vram_bytes and len(best) > 1:
        return min(best, key=lambda spec: abs(spec.vram_bytes - vram_bytes))
    return best[0]


class GpuNameError(DiffbenchError):
    """A GPU name typed by a person that names no card in the spec table, or several."""

    def __init__(self, message: str, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


# Words that tell apart two boards of one chip, which a person may leave out: "H100" is the SXM
# board or the PCIe one (different power and bandwidth), so a name without it is ambiguous.
_FORM_FACTORS = {"pcie", "sxm"}


def _typeable(spec: GpuSpec) -> str:
    """A name that resolves to this card alone: its own, or with its board where its own is shared
    ('H100' is the SXM board or the PCIe one: 'H100 SXM')."""
    if _best_matches(spec.name) == [spec]:
        return spec.name
    board = sorted(_tokens(spec.note.split(";")[0]) & _FORM_FACTORS - _tokens(spec.name))  # its own, not one it mentions
    return f"{spec.name} {board[0].upper()}" if board else spec.name


def resolve_gpu(name: str) -> GpuSpec:
    """The spec for a GPU name as a person types it: '4090', 'rtx 3060', '4070 ti', 'h200',
    'A100 80GB'. Every word typed must be in the card's name; of the cards that match, the one
    with the fewest other words wins ('4070' is the RTX 4070, not the 4070 Ti). Several cards that
    differ only in memory size or board ('A100': 40GB or 80GB; 'H100': SXM or PCIe) are an error
    that lists them, as is a name that matches none."""
    best = _best_matches(name)
    if len(best) > 1:
        choices = ", ".join(f"'{_typeable(spec)}'" + (f" ({spec.note.split(';')[0]})" if spec.note else "")
                            for spec in best)
        raise GpuNameError(f"GPU '{name}' is ambiguous: {choices}; name one", ambiguous=True)
    return best[0]


def _best_matches(name: str) -> list[GpuSpec]:
    """The cards a typed name fits best (one, or several that only a word left out tells apart);
    a GpuNameError where it names none."""
    typed_words, typed_sizes = _split(_tokens(name))
    if not typed_words:
        raise GpuNameError(f"GPU '{name}': not a GPU name; see `diffbench gpus` for the known cards")
    # The words decide the card; a size typed with them ('3060 12GB', 'A100 80GB') must be its memory,
    # and tells apart cards whose words are the same.
    candidates: list[tuple[int, GpuSpec]] = []
    for spec in GPUS:
        words, _ = _split(_tokens(spec.name) | _tokens(spec.note) & _FORM_FACTORS)
        if typed_words <= words:
            candidates.append((len(words - typed_words - _FORM_FACTORS), spec))
    if candidates and typed_sizes:
        fewest = min(extra for extra, _ in candidates)
        closest = [spec for extra, spec in candidates if extra == fewest]
        sized = [(extra, spec) for extra, spec in candidates
                 if extra == fewest and typed_sizes <= _split(_tokens(spec.name))[1] | {f"{spec.vram_gib:g}gb"}]
        if not sized:
            sizes_known = ", ".join(f"{spec.name} ({spec.vram_gib:g} GB)" for spec in closest)
            raise GpuNameError(f"GPU '{name}': the spec table knows {sizes_known}, not that memory size")
        candidates = sized
    if not candidates:
        exact = find_gpu(name)  # an NVML-style name ('NVIDIA GeForce RTX 4090') holds more words than the card's
        if exact is not None:
            return [exact]
        known = ", ".join(spec.name for spec in GPUS)
        raise GpuNameError(f"GPU '{name}': no card in the spec table matches; known: {known}")
    fewest = min(extra for extra, _ in candidates)
    return [spec for extra, spec in candidates if extra == fewest]
