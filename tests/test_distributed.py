"""The sweep on a real multi-node Ray cluster started on this machine, and the loss of a node.

On one machine a local directory stands in for the shared storage (an S3 bucket or NFS path on a
real cluster): every node of this cluster sees the same file system. MLflow is written from the
driver only, so trials on other nodes need no route to it.
"""

import time

import pandas as pd
import pytest
from ray.cluster_utils import Cluster

from dotmlp import analysis
from tests.conftest import finished_runs, start, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


@pytest.fixture
def cluster():
    # Two CPUs on the head: once the worker is gone, the sweep's rest runs two at a time on this
    # 2-core machine, not one.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    try:
        yield cluster
    finally:
        cluster.shutdown()  # tests stop what they start (no cluster left for a later ray.init)


def role(cluster, worker) -> dict:
    return {cluster.head_node.node_id: "head", worker.node_id: "worker"}


def sweep_args(results, name, address):
    # Trials of a few seconds each (width 256, no ASHA), so that the worker still holds running
    # trials when the first trial has finished and the node is removed: 6 trials, 4 slots, so a
    # slot freed on the worker takes a waiting trial. One seed per trial: what is tested is where
    # trials run and what a lost node does to them, not the replicas (a third of the compute of
    # the default three).
    return ["sweep/run.py", "--num-samples", "6", "--max-steps", "512",
            "--reports", "8", "--dimensions", "2,4,8", "--depths", "2,4", "--widths", "256",
            "--multiply", "off", "--seeds", "1", "--no-asha", "--no-figures", "--address", address,
            "--results-dir", str(results), "--name", name]


def test_trials_spread_over_the_nodes_and_survive_the_loss_of_one(cluster, tmp_path):
    # One sweep shows both: a trial retried after the worker died was running there (trials are
    # placed on both nodes), and the sweep still ends with every trial once.
    worker = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    args = sweep_args(tmp_path, "loss", cluster.address)
    log = tmp_path.parent / f"{tmp_path.name}-driver"
    driver = start(args, log)
    started = time.monotonic()
    try:
        assert wait_for(lambda: finished_runs(tmp_path, "loss") >= 1, timeout=300)
        cluster.remove_node(worker, allow_graceful=False)  # a node dies with trials on it
        removed_after = time.monotonic() - started
        driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    output = log.with_suffix(".out").read_text() + log.with_suffix(".err").read_text()
    assert driver.returncode == 0, output[-3000:]
    table = pd.read_csv(tmp_path / "loss" / analysis.TABLE_FILE)
    per_node = table["node_id"].map(role(cluster, worker)).value_counts().to_dict()
    print(f"node removed after {removed_after:.0f} s; sweep took {time.monotonic() - started:.0f} s; "
          f"retries: {table['retries'].sum()}; final node per trial: {per_node}")
    assert len(table) == 6 and table["trial_id"].is_unique  # every trial once
    assert table["run_id"].notna().all() and table["node_id"].isin(role(cluster, worker)).all()
    assert set(table["status"]) <= {"completed", "pruned"}
    assert table["retries"].sum() >= 1  # some trial was on the lost node and was retried
    assert (table["node_id"] == cluster.head_node.node_id).sum() >= table["retries"].astype(bool).sum()
