"""The GPU check's issue-39 sections rehearse on a machine without CUDA (--quick): their suites
validate and run through the real runner, CUDA-only cells say why they do not apply, and nothing
fails, so the script is ready the day a device is lent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_12gb_sections_rehearse_on_cpu(tmp_path: Path, repo: Path) -> None:
    out = tmp_path / "check"
    result = subprocess.run([sys.executable, str(repo / "benchmarks" / "gpu_check.py"), str(out), "--quick",
                             "--only", "fit12", "flux12", "results12"],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    assert "FAILED" not in summary and not list(out.glob("*.error.txt")), summary
    for section in ("## fit12", "## flux12", "## results12"):
        assert section in summary
    # every fit12 setting is a cell of its own, and each says what happened to it
    for setting in ("plain", "vae_tiling", "vae_slicing", "bnb:nf4"):
        assert f"(default allocator): {setting}: " in summary
    # the results section's plain cells run here; the CUDA-only ones say why they cannot
    assert "sd15 64x64 50 steps, offload none, quantize none: ok, n=2" in summary
    assert "quantize bnb:nf4: not_applicable (quantize 'bnb:nf4' needs a CUDA GPU" in summary
    assert (out / "results12" / "results12.yaml").is_file()
