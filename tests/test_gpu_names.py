"""GPU names as people type them resolve to one card of the spec table, or to a one-line error
that lists the cards an ambiguous name could be (never a silent pick)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffbench.hardware.gpus import GpuNameError, find_gpu, resolve_gpu
from diffbench.rules.memsize import vram_limit_bytes


@pytest.mark.parametrize(("typed", "card"), [
    ("4090", "RTX 4090"), ("rtx 3060", "RTX 3060"), ("3060", "RTX 3060"), ("3060 ti", "RTX 3060 Ti"),
    ("4070 ti", "RTX 4070 Ti"), ("4070", "RTX 4070"), ("h200", "H200"), ("H100 SXM", "H100"),
    ("h100 pcie", "H100 PCIe"), ("A100 80GB", "A100 80GB"), ("a100 40 gb", "A100 40GB"), ("L4", "L4"),
    ("l40s", "L40S"),
    # names as NVML reports them still resolve
    ("NVIDIA GeForce RTX 4090", "RTX 4090"), ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA A100-SXM4-80GB", "A100 80GB"),
    ("Tesla P100-PCIE-16GB", "P100"), ("Tesla P40", "P40"), ("NVIDIA GeForce GTX 1080 Ti", "GTX 1080 Ti"),
    ("NVIDIA GeForce GTX 1060 6GB", "GTX 1060"),
])
def test_a_typed_name_resolves_to_one_card(typed: str, card: str) -> None:
    assert resolve_gpu(typed).name == card


@pytest.mark.parametrize(("typed", "choices"), [("A100", ["A100 40GB", "A100 80GB"]), ("h100", ["H100 PCIe", "H100 SXM"])])
def test_an_ambiguous_name_is_an_error_listing_the_choices(typed: str, choices: list[str]) -> None:
    with pytest.raises(GpuNameError) as caught:
        resolve_gpu(typed)
    message = str(caught.value)
    assert caught.value.ambiguous and "ambiguous" in message and "\n" not in message
    assert all(f"'{choice}'" in message for choice in choices)


def test_an_unknown_name_is_an_error_naming_the_known_cards() -> None:
    with pytest.raises(GpuNameError, match=r"GPU 'rtx 9999': no card in the spec table matches; known: GTX 1060, GTX 1070, "):
        resolve_gpu("rtx 9999")
    with pytest.raises(GpuNameError, match="not a GPU name"):
        resolve_gpu("24GB")


def test_the_old_lookup_is_what_made_4090_fail_and_a100_silent() -> None:
    """The estimate command used find_gpu for typed names: '4090' found nothing, 'A100' the 40 GB card."""
    assert find_gpu("4090") is None and find_gpu("A100") is not None
    assert resolve_gpu("4090").name == "RTX 4090"


def test_a_vram_limit_takes_a_typed_card_and_refuses_an_ambiguous_one() -> None:
    assert vram_limit_bytes("3060") == vram_limit_bytes("RTX 3060") == resolve_gpu("RTX 3060").vram_bytes
    with pytest.raises(ValueError, match="'A100' is ambiguous: 'A100 40GB'"):
        vram_limit_bytes("A100")
    with pytest.raises(ValueError, match="expected a size such as 12GiB"):
        vram_limit_bytes("banana")


def test_estimate_takes_a_typed_card_and_names_the_choices_of_an_ambiguous_one(tmp_path: Path) -> None:
    from test_costmodel import frame_of, write

    from diffbench.analysis.costmodel import EstimateError, estimate

    write(tmp_path / "a.jsonl", "NVIDIA GeForce RTX 4090", fixed=0.6, per_eval=0.05, steps=[10, 20, 40])
    [typed] = estimate(frame_of(tmp_path), 20, gpu="3060")  # measured on an RTX 4090, projected
    [named] = estimate(frame_of(tmp_path), 20, gpu="RTX 3060")
    assert typed.seconds == named.seconds and "PROJECTION" in typed.sentence()
    with pytest.raises(EstimateError, match="'A100' is ambiguous: 'A100 40GB' .*'A100 80GB'"):
        estimate(frame_of(tmp_path), 20, gpu="A100")


@pytest.mark.parametrize("typed", ["H100", "A100"])
def test_every_choice_an_ambiguous_name_offers_can_be_typed_back(typed: str) -> None:
    """'H100' once offered 'H100' itself as a choice, which is ambiguous again: each choice named
    must resolve to one card, and the choices to different cards."""
    import re

    from diffbench.hardware.gpus import GpuNameError

    with pytest.raises(GpuNameError) as refused:
        resolve_gpu(typed)
    choices = re.findall(r"'([^']+)'", str(refused.value).split("ambiguous: ", 1)[1])
    assert len(choices) >= 2
    cards = [resolve_gpu(choice).name for choice in choices]
    assert len(set(cards)) == len(cards)
