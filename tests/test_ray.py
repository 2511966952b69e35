"""A real two-node Ray cluster on this machine: cells go to the node with their GPU type, and a
node lost mid-run is survived.

The cluster runs inside a network namespace of its own with only a loopback interface, so every
connection Ray makes stays on 127.0.0.1 (Ray would otherwise advertise the machine's external
address even when told 127.0.0.1). Needs root for `ip netns`; skipped where that is not possible.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from diffbench.execute.ray_executor import gpu_resource  # noqa: E402

BIN = Path(sys.executable).parent
PORT = 6391


def _netns_available() -> bool:
    return shutil.which("ip") is not None and os.geteuid() == 0


pytestmark = pytest.mark.skipif(not _netns_available(), reason="needs root and iproute2 for a private network namespace")


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.ns = f"diffbench-ray-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp
        self.nodes: list[subprocess.Popen[str]] = []
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"], check=True)

    def command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *args]

    def start_node(self, resource: str, head: bool) -> subprocess.Popen[str]:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--resources={json.dumps({resource: 1})}",
                  "--disable-usage-stats", "--block"]
        where = ["--head", f"--port={PORT}", "--include-dashboard=false"] if head else [f"--address=127.0.0.1:{PORT}"]
        log = open(self.tmp / f"{resource}.log", "w")  # noqa: SIM115 - lives as long as the node
        # Each node in a session of its own: killing that session is losing the node.
        process = subprocess.Popen(self.command(str(BIN / "ray"), "start", *where, *common), stdout=log,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.nodes.append(process)
        return process

    def wait_for(self, resources: set[str], timeout: float = 90) -> None:
        probe = ("import ray, sys; ray.init(address='127.0.0.1:%d', logging_level='ERROR');"
                 "print(sorted(k for n in ray.nodes() if n['Alive'] for k in n['Resources']))" % PORT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(self.command(sys.executable, "-c", probe), capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and all(r in out.stdout for r in resources):
                return
            time.sleep(1)
        raise AssertionError(f"the cluster never offered {resources}")

    def kill_node(self, process: subprocess.Popen[str]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.nodes:  # only the Ray processes this test started
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)
        subprocess.run(["ip", "netns", "del", self.ns], check=False)


@pytest.fixture()
def cluster(tmp_path: Path):
    made = Cluster(tmp_path)
    try:
        made.head = made.start_node(gpu_resource("type a"), head=True)
        made.worker = made.start_node(gpu_resource("type b"), head=False)
        made.wait_for({"gpu_type_a", "gpu_type_b"})
        yield made
    finally:
        made.stop()


SUITE = """\
name: fleet
models:
  tiny: {{source: "builtin:tiny-sd"}}
defaults: {{device: cpu, steps: {steps}}}
matrix:
  gpu: ["type a", "type b"]
  sampler: [euler, ddim, dpmpp_2m]
warmup: 1
repeats: {repeats}
"""


def _run(cluster: Cluster, suite: Path, out: Path, *extra: str, background: bool = False) -> Any:
    command = cluster.command(sys.executable, "-m", "diffbench.cli", "run", str(suite), "--out", str(out),
                              "--executor", "ray", "--address", f"127.0.0.1:{PORT}", *extra)
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_cell_runs_on_the_node_with_its_gpu_type(cluster: Cluster, tmp_path: Path) -> None:
    suite = tmp_path / "fleet.yaml"
    suite.write_text(SUITE.format(steps=2, repeats=2))
    result = _run(cluster, suite, tmp_path / "out")
    assert result.returncode == 0, result.stderr + result.stdout
    [path] = (tmp_path / "out").glob("*.jsonl")
    records = _records(path)
    runs = {r["run_id"]: r for r in records if r["type"] == "run"}
    generations = [r for r in records if r["type"] == "generation"]
    assert len(generations) == 6 * 3 and all(g["status"] == "ok" for g in generations)
    # nothing lost or duplicated: every cell and repeat exactly once
    measured = Counter((g["cell_id"], g["repeat"]) for g in generations if not g["warmup"])
    assert len(measured) == 12 and set(measured.values()) == {1}
    for generation in generations:
        node = runs[generation["run_id"]]["host"]
        assert gpu_resource(generation["cell"]["gpu"]) in node["ray_resources"]
    assert len({runs[g["run_id"]]["host"]["ray_node_id"] for g in generations}) == 2


def test_a_node_lost_mid_run_is_survived(cluster: Cluster, tmp_path: Path) -> None:
    suite = tmp_path / "fleet.yaml"
    suite.write_text(SUITE.format(steps=40, repeats=4))
    process = _run(cluster, suite, tmp_path / "out", background=True)
    out = tmp_path / "out"
    deadline = time.monotonic() + 300
    killed = False
    while time.monotonic() < deadline and not killed:
        for path in out.glob("*.jsonl"):
            records = [r for r in _records_partial(path) if r.get("type") == "generation"]
            on_b = [r for r in records if r["cell"]["gpu"] == "type b" and not r["warmup"]]
            if on_b:
                cluster.kill_node(cluster.worker)
                killed = True
                break
        time.sleep(0.05)
    assert killed, "the run never measured a generation on the second node"
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr + stdout
    [path] = out.glob("*.jsonl")
    generations = [r for r in _records(path) if r["type"] == "generation"]
    by_gpu: dict[str, Counter[str]] = {}
    for g in generations:
        by_gpu.setdefault(g["cell"]["gpu"], Counter())[g["status"]] += 1
    assert by_gpu["type a"] == Counter({"ok": 3 * 5})  # the surviving node ran all its cells
    statuses_b = by_gpu["type b"]
    assert statuses_b["crashed"] >= 1  # the cell in progress, then those with no node left
    crashed = [g for g in generations if g["status"] == "crashed"]
    cells_b = {g["cell_id"] for g in generations if g["cell"]["gpu"] == "type b"}
    assert {g["cell_id"] for g in crashed} | {g["cell_id"] for g in generations
                                              if g["cell"]["gpu"] == "type b" and g["status"] == "ok"} == cells_b
    assert len(cells_b) == 3 and all(g["error"] for g in crashed)


def _records_partial(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return records


def test_resume_on_the_cluster_runs_only_what_is_missing(cluster: Cluster, tmp_path: Path) -> None:
    suite = tmp_path / "fleet.yaml"
    suite.write_text(SUITE.format(steps=2, repeats=2))
    assert _run(cluster, suite, tmp_path / "out").returncode == 0
    [path] = (tmp_path / "out").glob("*.jsonl")
    full = Counter((g["cell_id"], g["repeat"]) for g in _records(path) if g["type"] == "generation" and not g["warmup"])
    # cut the file after its first five measured generations, as an interrupted run leaves it
    lines, kept, measured = path.read_text().splitlines(), [], 0
    for line in lines:
        record = json.loads(line)
        if record["type"] == "generation" and not record["warmup"]:
            if measured == 5:
                break
            measured += 1
        kept.append(line)
    path.write_text("\n".join(kept) + "\n")
    result = _run(cluster, suite, tmp_path / "out", "--resume", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    after = Counter((g["cell_id"], g["repeat"]) for g in _records(path) if g["type"] == "generation" and not g["warmup"])
    assert after == full  # every cell and repeat exactly once, wherever it ran
