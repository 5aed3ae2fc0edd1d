"""Run a sweep from validated settings: connect to Ray, prepare MLflow, fit or resume, analyse."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from dotmlp.config import SweepSettings

SETTINGS_FILE = "sweep.json"


class UsageError(Exception):
    """Bad input found once Ray or the stores are reachable; nothing has been written."""


def probe(address: str) -> None:
    """Fail fast on a cluster address nobody listens on: ray.init retries the GCS for minutes."""
    if address in ("auto", "local"):
        return  # ray.init resolves these itself and fails at once when there is nothing
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise UsageError(f"address must be 'auto' or host:port, got {address!r}")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=10):
            pass
    except OSError as error:
        raise UsageError(f"address {address!r} cannot be reached: {error}") from None


def connect(address: str | None) -> None:
    import ray

    if address:
        probe(address)
    try:
        # "local" forces a new runtime: a bare ray.init() would join any cluster left running here.
        ray.init(
            address=address or "local",
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"address {address!r} cannot be reached: {message}") from None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(
    settings: SweepSettings,
    name: str,
    results_dir: Path,
    storage: str,
    mlflow_uri: str,
    address: str | None = None,
    resume: bool = False,
    max_failures: int = 2,
    figures: bool = True,
    verbose: int = 1,
    timeline: str | None = None,
) -> dict:
    """Run (or resume) the sweep and return its summary; with timeline, also write Ray's
    timeline of tasks and actor calls there (as ray.timeline does)."""
    # Tune's legacy reporter honours the columns and the report interval the CLI asks for;
    # the new output engine prints a box per finished trial, 200 of them in a default sweep.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Short trials checkpoint often, so Tune snapshots its state often and warns at every one;
    # a snapshot of a few hundred small trials is cheap (measured in benchmarks/README.md).
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray

    from dotmlp import analysis, tracking
    from dotmlp import tune as dtune

    path = dtune.experiment_path(storage, name)
    if resume and not dtune.can_resume(storage, name):
        raise UsageError(f"--resume: no experiment named {name!r} to resume in {storage}")
    if not resume and "://" not in storage and (Path(path) / "tuner.pkl").exists():
        raise UsageError(
            f"an experiment named {name!r} already exists in {storage}: "
            "pass --resume to continue it, or choose another --name"
        )
    if timeline:
        # Ray records the timeline only when told before it starts (a local runtime's workers
        # inherit the variable; a cluster's nodes need it set where they start).
        os.environ.setdefault("RAY_PROFILING", "1")
    ray_started = time.perf_counter()
    connect(address)
    ray_start_seconds = time.perf_counter() - ray_started
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        trial_resources = dtune.resources(settings, cluster_gpus)
        if address is None and trial_resources["gpu"] > cluster_gpus:
            raise UsageError(
                f"gpus-per-trial {trial_resources['gpu']} but this machine has {cluster_gpus:g} GPUs "
                "visible to Ray: trials would wait forever"
            )
        try:
            tracking.ensure_experiment(mlflow_uri, name)
        except Exception as error:  # any store failure is the user's URI, reported in one line
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise UsageError(f"mlflow-uri {mlflow_uri!r} cannot be opened: {first}") from None
        out = Path(results_dir) / name
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "settings": settings.to_dict(), "storage": storage, "experiment_path": path,
            "mlflow_uri": mlflow_uri, "resources": trial_resources,
            "rungs": dtune.rung_milestones(settings),
        }
        write_atomically(out / SETTINGS_FILE, json.dumps(record, indent=2))
        if resume:
            print(f"Resuming {path}. ASHA's rung records are not restored (ray-project/ray#30838): "
                  "resumed trials are compared only with results reported after the restart.")
            tuner = dtune.restore_tuner(settings, storage, name, trial_resources)
        else:
            tuner = dtune.make_tuner(
                settings, name, storage, mlflow_uri, trial_resources, max_failures, verbose
            )
        started = time.perf_counter()
        tuner.fit()
        wall = time.perf_counter() - started
        if timeline:
            ray.timeline(str(timeline))
    finally:
        ray.shutdown()
    table = analysis.build(results_dir, name, figures=figures)
    summary = analysis.summarize(table, record)
    summary.update(wall_seconds=wall, ray_start_seconds=ray_start_seconds)
    print(analysis.format_summary(summary, out))
    return summary
