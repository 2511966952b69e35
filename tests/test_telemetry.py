"""NVML code against a fake with nvidia-ml-py's real names and errors; sysinfo without a GPU."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import pynvml
import pytest

from diffbench.execute.advice import check_throttling
from diffbench.hardware import nvml
from diffbench.hardware.sysinfo import system_report
from diffbench.measure.telemetry import TelemetrySampler

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGpu, FakeProcess, make_fake_pynvml  # noqa: E402


@pytest.fixture()
def fake_gpus(monkeypatch):
    """Install a fake pynvml with the given GPUs for the code under test."""

    def install(*gpus: FakeGpu):
        fake = make_fake_pynvml(list(gpus))
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        nvml.reset()
        return fake

    yield install
    nvml.reset()


def test_the_fake_keeps_the_real_librarys_names_and_parameters() -> None:
    fake = make_fake_pynvml([FakeGpu()])
    assert len(fake.REPLACED) >= 25
    for name in fake.REPLACED:
        real = getattr(pynvml, name)
        assert list(inspect.signature(getattr(fake, name)).parameters) == list(inspect.signature(real).parameters), name
    assert fake.NVMLError_NotSupported is pynvml.NVMLError_NotSupported


def test_gpus_are_described_and_matched_by_uuid(fake_gpus) -> None:
    second = FakeGpu(name="NVIDIA GeForce RTX 3060", uuid="GPU-aaaa", total_bytes=12 * 2**30)
    fake_gpus(FakeGpu(), second)
    gpus = nvml.describe_gpus()
    assert [g["name"] for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 3060"]
    first = gpus[0]
    assert first["vram_bytes"] == 24 * 2**30 and first["driver"] == "580.65.06" and first["cuda"] == "13.0"
    assert first["compute_capability"] == "8.9" and first["power_limit_w"] == 450
    assert (first["pcie_gen"], first["pcie_width_max"]) == (4, 16)
    assert nvml.handle_for_uuid("GPU-aaaa") is second
    assert nvml.handle_for_uuid("GPU-missing") is None
    assert nvml.gpu_warnings(gpus) == []


def test_what_spoils_a_benchmark_is_warned_about(fake_gpus) -> None:
    fake_gpus(FakeGpu(processes=[FakeProcess(4242, 3 * 2**30)], power_limit_w=300, pcie=(4, 4, 4, 16)))
    report = system_report()
    text = " | ".join(report["warnings"])
    assert "1 other process(es) hold 3.00 GiB" in text and "4242" in text
    assert "power limit 300 W is below its default 450 W" in text
    assert "PCIe link runs x4 of x16" in text
    assert report["gpus"][0]["spec"] == "RTX 4090"


def test_energy_from_the_counter_where_the_card_has_one(fake_gpus) -> None:
    fake = fake_gpus(FakeGpu(power_w=lambda t: 200.0))
    sampler = TelemetrySampler(fake, nvml.handle_for_uuid(FakeGpu().uuid), hz=50)
    assert sampler.energy_counter
    sampler.start()
    time.sleep(0.5)
    summary = sampler.stop(keep_trace=True)
    assert summary["energy_source"] == "energy_counter"
    assert summary["energy_j"] == pytest.approx(200.0 * summary["duration_s"], rel=0.1)
    assert summary["avg_power_w"] == pytest.approx(200.0, rel=0.1)
    assert summary["samples"] >= 15 and summary["sm_clock_mhz_avg"] == 2520 and summary["temperature_c_max"] == 62
    assert summary["pcie_tx_kbs_avg"] is None  # not supported: absent, not zero
    assert summary["peak_device_used_bytes"] == 2 * 2**30
    assert len(summary["trace"]["power_w"]) == summary["samples"]


def test_energy_integrated_from_power_on_cards_without_the_counter(fake_gpus) -> None:
    # An older card: no energy counter (NVMLError_NotSupported); power ramps 100 W -> 300 W in 0.5 s.
    fake = fake_gpus(FakeGpu(energy_counter=False, power_w=lambda t: 100.0 + 400.0 * min(t, 0.5)))
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    handle.started = time.perf_counter()
    sampler = TelemetrySampler(fake, handle, hz=50)
    assert not sampler.energy_counter
    sampler.start()
    time.sleep(0.5)
    summary = sampler.stop()
    assert summary["energy_source"] == "integrated_power"
    expected = 100.0 * 0.5 + 0.5 * 200.0 * 0.5  # trapezoid of the ramp: 100 J
    assert summary["energy_j"] == pytest.approx(expected, rel=0.15)
    assert summary["peak_power_w"] > 250


def test_throttling_is_decoded_and_warned(fake_gpus) -> None:
    fake = fake_gpus(FakeGpu(throttle_mask=pynvml.nvmlClocksThrottleReasonSwPowerCap
                             | pynvml.nvmlClocksThrottleReasonGpuIdle, temperature_c=84))
    sampler = TelemetrySampler(fake, fake.nvmlDeviceGetHandleByIndex(0))
    sampler.start()
    summary = sampler.stop()
    assert summary["throttle_reasons"] == ["sw_power_cap"] and summary["throttled"]
    advice = check_throttling("cell x", [summary])
    assert advice and "sw_power_cap" in advice[0].message and "84" in advice[0].message


def test_sysinfo_without_a_gpu_reports_no_gpus_and_says_why(repo: Path) -> None:
    try:
        pynvml.nvmlInit()
        pytest.skip("this machine has an NVIDIA driver: the no-GPU path cannot be seen here")
    except pynvml.NVMLError:
        pass
    result = subprocess.run([sys.executable, "-m", "diffbench.cli", "sysinfo", "--json"], capture_output=True,
                            text=True, timeout=120, cwd=repo)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["gpus"] == []
    assert {"hostname", "os", "cpu", "ram_bytes"} <= info.keys()
    assert info["software"]["diffbench"] and info["software"]["torch"]
    assert info["telemetry"].startswith("unavailable")
    plain = subprocess.run([sys.executable, "-m", "diffbench.cli", "sysinfo"], capture_output=True, text=True,
                           timeout=120, cwd=repo)
    assert plain.stdout.count("GPU telemetry is unavailable") == 1
