"""The README's cluster story short of AWS: Ray's real autoscaler, with its fake multi-node provider,
adds a worker of cluster.yaml's own GPU type when the sweep's trials wait for a GPU share, the trials
run there (four to a GPU), and the idle worker goes away.

The fake provider starts each node as local processes; its GPUs are only a resource, so torch sees no
CUDA and the trials run on the CPU. Everything started here lives in one process session, which the
test ends by its id: `ray stop` would also stop other Ray instances on this machine.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pytest
import yaml

from dotmlp import analysis
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

GPU_PER_TRIAL = 0.25
IDLE_TIMEOUT_MINUTES = 0.2  # cluster.yaml's 5 minutes, shortened
FAKE_HEAD_TYPE = "ray.head.default"  # the type the fake provider gives its head node

# Polls the cluster from a second driver: alive nodes, and the GPU share each one has handed out
# (Tune reserves a trial's bundle before the trial starts, so this is the trials placed there).
WATCH = """
import json, sys, time, ray
from ray._private import state
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
while True:
    total, free = state.total_resources_per_node(), state.available_resources_per_node()
    nodes = {n: {"gpu": r.get("GPU", 0), "gpu_used": r.get("GPU", 0) - free.get(n, {}).get("GPU", 0)}
             for n, r in total.items()}
    print(json.dumps({"t": time.time(), "nodes": nodes}), flush=True)
    time.sleep(0.5)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_cluster_config(cluster: dict, gcs_address: str, head_cpus: int) -> dict:
    """cluster.yaml's GPU worker type under the fake provider; a head with CPUs and no GPU."""
    worker = cluster["available_node_types"]["gpu_worker"]
    empty_commands = ["initialization_commands", "setup_commands", "head_setup_commands",
                      "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands"]
    return {
        "cluster_name": "dotmlp-fake",
        "max_workers": cluster["max_workers"],
        "upscaling_speed": cluster.get("upscaling_speed", 1.0),
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,  # the provider assumes port 6379 otherwise
        },
        "auth": {},
        "available_node_types": {
            FAKE_HEAD_TYPE: {"resources": {"CPU": head_cpus}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {
                "resources": dict(worker["resources"]),
                "node_config": {},
                "min_workers": worker.get("min_workers", 0),
                "max_workers": worker["max_workers"],
            },
        },
        "head_node_type": FAKE_HEAD_TYPE,
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        **{key: [] for key in empty_commands},
    }


def stop_session(proc: subprocess.Popen) -> None:
    """End every process of the session proc leads (the head, its autoscaler, the fake nodes)."""
    for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and session_alive(proc.pid):
            time.sleep(0.2)


def session_alive(sid: int) -> bool:
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.getsid(int(pid)) == sid:
                with open(f"/proc/{pid}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                        return True
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return False


@pytest.fixture
def fake_cluster(tmp_path):
    """A head started as cluster.yaml starts it (token authentication on), with the autoscaler."""
    from ray._private.services import get_node_ip_address

    # Unix socket paths are short; pytest's tmp_path is too long for Ray's session folder.
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    port = free_port()
    gcs_address = f"{get_node_ip_address()}:{port}"
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config = fake_cluster_config(cluster, gcs_address, head_cpus=1)
    config_file = tmp_path / "autoscaling.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token), "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", f"--port={port}", f"--temp-dir={temp_dir}",
         "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
         f"--dashboard-agent-listen-port={free_port()}", f"--autoscaling-config={config_file}"],
        env=env, start_new_session=True, stdout=open(tmp_path / "head.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (tmp_path / "head.log").read_text():
            assert head.poll() is None and time.monotonic() < deadline, (tmp_path / "head.log").read_text()
            time.sleep(0.5)
        yield {"address": gcs_address, "env": env, "config": config, "cluster": cluster}
    finally:
        stop_session(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not session_alive(head.pid), "processes of the fake cluster are left running"


def test_the_autoscaler_adds_a_gpu_worker_for_the_sweep_and_removes_it(fake_cluster, run_cli, tmp_path):
    # The job's environment on the cluster: RAY_ADDRESS and the token mode come from the head.
    env = {key: fake_cluster["env"][key] for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    env["RAY_ADDRESS"] = fake_cluster["address"]
    watch_log = open(tmp_path / "watch.jsonl", "w")
    watcher = subprocess.Popen([sys.executable, "-c", WATCH, fake_cluster["address"]],
                               env={**os.environ, **env}, stdout=watch_log, stderr=subprocess.DEVNULL)
    started = time.time()
    try:
        proc = run_cli(
            "sweep/run.py", "--address", "auto", "--gpus-per-trial", str(GPU_PER_TRIAL),
            "--num-samples", "6", "--max-steps", "64", "--reports", "2", "--dimensions", "2",
            "--depths", "1", "--widths", "16", "--multiply", "off", "--no-asha", "--no-figures",
            "--results-dir", str(tmp_path / "results"), "--name", "autoscaled",
            env=env, timeout=300,
        )
        sweep_done = time.time()
        assert proc.returncode == 0, proc.stderr[-3000:]
        # The idle worker should go within the idle timeout plus a few autoscaler rounds.
        deadline = time.monotonic() + IDLE_TIMEOUT_MINUTES * 60 + 60
        while time.monotonic() < deadline and len(samples(tmp_path)[-1]["nodes"]) > 1:
            time.sleep(1)
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)
        watch_log.close()

    timeline = samples(tmp_path)
    worker_type = fake_cluster["cluster"]["available_node_types"]["gpu_worker"]
    per_gpu = round(1 / GPU_PER_TRIAL)
    workers = {n for s in timeline for n, r in s["nodes"].items() if r["gpu"] > 0}
    counts = [(round(s["t"] - started, 1), len(s["nodes"]) - 1) for s in timeline]
    changes = [c for i, c in enumerate(counts) if i == 0 or c[1] != counts[i - 1][1]]
    up = next(t for t, n in counts if n > 0)
    last_busy = max(s["t"] for s in timeline if any(r["gpu_used"] > 0 for r in s["nodes"].values()))
    down = next(s["t"] for s in timeline if s["t"] > last_busy and len(s["nodes"]) == 1) - last_busy
    busiest = {n: max(s["nodes"].get(n, {}).get("gpu_used", 0) for s in timeline) for n in workers}
    table = pd.read_csv(tmp_path / "results" / "autoscaled" / analysis.TABLE_FILE)
    per_node = table["node_id"].value_counts().to_dict()
    print(f"\nworker nodes over time (s from the sweep's start, count): {changes}\n"
          f"first worker up after {up:.1f} s; sweep done after {sweep_done - started:.1f} s; "
          f"last trial ended -> worker gone in {down:.1f} s "
          f"(idle timeout {IDLE_TIMEOUT_MINUTES * 60:.0f} s)\n"
          f"trials per node: {per_node}; most trials at once per worker: "
          f"{ {n[-5:]: round(g / GPU_PER_TRIAL) for n, g in busiest.items()} }")

    assert 1 <= len(workers) <= fake_cluster["config"]["max_workers"]
    assert all(timeline[-1]["nodes"].get(n) is None for n in workers)  # removed once idle
    assert all(s["nodes"][n]["gpu"] == worker_type["resources"]["GPU"] for s in timeline
               for n in s["nodes"] if n in workers)
    assert len(table) == 6 and table["status"].eq("completed").all()
    assert set(per_node) <= workers  # every trial ran on a GPU worker, none on the head
    at_once = [round(used / GPU_PER_TRIAL) for used in busiest.values()]
    assert max(at_once) <= per_gpu * worker_type["resources"]["GPU"]  # four to a GPU, no more
    assert max(at_once) >= 2  # and they did share it


def samples(folder) -> list[dict]:
    lines = (folder / "watch.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]
