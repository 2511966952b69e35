"""Running out of memory is an answer (`oom`), never an `error`: on a GPU and on the CPU alike."""

from __future__ import annotations

import pytest


def test_a_cpu_allocation_failure_is_recorded_as_oom() -> None:
    import torch

    from diffbench.execute.worker import _is_oom

    with pytest.raises(RuntimeError) as caught:  # 1 PiB: refused by the allocator at once, nothing allocated
        torch.empty(2**50, dtype=torch.uint8)
    assert _is_oom(caught.value)
    assert _is_oom(MemoryError())
    assert _is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 17.00 GiB"))
    assert not _is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_the_memory_floor_counts_the_decoders_last_block_and_the_decoded_batch() -> None:
    from diffbench.rules.memoryfloor import floor_bytes

    sdxl = {"source": "stabilityai/stable-diffusion-xl-base-1.0", "family": "sdxl", "resolution": "2048x1024",
            "batch_size": 4, "dtype": "fp16"}
    # input and output of a 128-channel block at full resolution, fp16: 2 x 4 x 128 x 2048 x 1024 x 2 bytes
    assert floor_bytes(sdxl, "cuda")[0] == 2 * 4 * 128 * 2048 * 1024 * 2
    assert floor_bytes({**sdxl, "vae_slicing": True}, "cuda")[0] == 2 * 1 * 128 * 2048 * 1024 * 2  # one at a time
    # tiled, the decoder is bounded by its tile: what is left is the decoded batch itself (3 channels)
    assert floor_bytes({**sdxl, "vae_tiling": True}, "cuda")[0] == 4 * 3 * 2048 * 1024 * 2
    assert floor_bytes({**sdxl, "dtype": "auto"}, "cpu")[0] == 2 * 4 * 128 * 2048 * 1024 * 4  # auto is fp32 on a CPU
    assert floor_bytes({**sdxl, "resolution": None}, "cuda")[0] == 2 * 4 * 128 * 1024 * 1024 * 2  # its native size
    wan = {"source": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "family": "wan", "resolution": "832x480", "frames": 81,
           "batch_size": 1, "dtype": "bf16"}
    assert floor_bytes(wan, "cuda")[0] == max(81 * 3, 2 * 96) * 832 * 480 * 2  # the clip outweighs the block
    assert floor_bytes({"source": "builtin:tiny-sd", "family": "sd", "resolution": "64x64", "batch_size": 1,
                        "dtype": "fp32"}, "cpu")[0] == 2 * 8 * 64 * 64 * 4  # the tiny VAE's own 8 channels


def test_a_cell_above_the_card_is_not_applicable_before_its_group_loads() -> None:
    import torch

    from diffbench.execute.base import CellWork, Job
    from diffbench.execute.configure import Runtime
    from diffbench.execute.worker import Worker

    class Sent:
        def __init__(self) -> None:
            self.messages: list[tuple[str, object]] = []

        def send(self, message: tuple[str, object]) -> None:
            self.messages.append(message)

    def cell(cell_id: str, resolution: str) -> CellWork:
        return CellWork(cell_id, {"source": "stabilityai/sdxl-turbo", "family": "sdxl", "resolution": resolution,
                                  "batch_size": 8, "dtype": "auto", "steps": 4}, (0,))

    sent = Sent()
    worker = Worker(sent, Job({}, ".", 0, [cell("fits", "1024x1024"), cell("too-big", "4096x4096")]))
    runtime = Runtime(torch.device("cuda", 0), "fp16", "NVIDIA GeForce RTX 3060", total_memory=12 * 2**30)
    kept = worker._within_memory(runtime)
    assert [c.cell_id for c in kept] == ["fits"]  # 2 x 8 x 128 x 1024² x 2 bytes = 4 GiB fits 12 GiB
    [(kind, cell_id), (_, record), end] = sent.messages
    assert end == ("cell_end", "too-big")  # the cell has all it will get
    assert (kind, cell_id, record["status"]) == ("cell", "too-big", "not_applicable")
    assert record["error"] == ("needs at least 64.0 GiB before any weights (the VAE decoder's last block at 4096x4096: "
                               "input and output, 8 x 128 channels x 2 bytes), more than this GPU's memory (12.0 GiB): "
                               "not tried")


def test_plan_and_run_refuse_a_cell_that_cannot_fit_this_host_before_any_worker_starts(tmp_path) -> None:
    import json
    import subprocess
    import sys

    suite = tmp_path / "huge.yaml"
    suite.write_text("name: huge\nmodels:\n  t: {source: 'builtin:tiny-sd'}\ndefaults: {device: cpu, steps: 1}\n"
                     "matrix:\n  resolution: [64x64, 8192x8192]\n  batch_size: [64]\nwarmup: 0\nrepeats: 1\n")
    planned = subprocess.run([sys.executable, "-m", "diffbench.cli", "plan", str(suite), "--json"],
                             capture_output=True, text=True, timeout=120)
    assert planned.returncode == 0, planned.stderr
    planned_json = json.loads(planned.stdout)
    cells = planned_json["cells"]
    assert planned_json["generations"] == 1 and planned_json["loads"] == 1  # only the cell that will run counts
    reasons = {c["settings"]["resolution"]: c["not_applicable"] for c in cells}
    assert reasons["64x64"] is None
    assert reasons["8192x8192"].startswith("needs at least 256.0 GiB before any weights") and \
        "more than this host's memory" in reasons["8192x8192"]
    ran = subprocess.run([sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    records = [json.loads(line) for line in next((tmp_path / "out").glob("*.jsonl")).read_text().splitlines()]
    refused = [r for r in records if r["type"] == "generation" and r["cell"]["resolution"] == "8192x8192"]
    assert [r["status"] for r in refused] == ["not_applicable"] and refused[0]["error"] == reasons["8192x8192"]
    assert sum(1 for r in records if r["type"] == "load") == 1  # one load, for the cell that fits
