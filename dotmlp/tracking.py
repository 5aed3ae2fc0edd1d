"""The MLflow side: where the store is, checking it can be opened, and the sweep's experiment."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

# Tags that tie an MLflow run to its Tune trial; analysis joins on them.
SWEEP_TAG = "dotmlp.sweep"  # the sweep's name (its MLflow experiment)
SWEEP_ID_TAG = "dotmlp.sweep_id"  # one run of a sweep: a name reused later gets a new id
TRIAL_TAG = "tune.trial_id"
STATUS_TAG = "dotmlp.status"
DEVICE_TAG = "dotmlp.device"  # the device kind the trial trained on: cpu or cuda


def default_uri(results_dir: str | os.PathLike) -> str:
    # Absolute: trials and the driver run in different working directories.
    return f"sqlite:///{Path(results_dir).resolve() / 'mlflow.db'}"


def check_uri(uri: str, will_create: Path | None = None) -> None:
    """Raise ValueError if the store cannot be opened; writes nothing.

    will_create: a directory the caller will create before opening the store (the results dir).
    """
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None
        if path is None or not path.name:
            raise ValueError(f"mlflow-uri must look like sqlite:////absolute/path.db, got {uri!r}")
        folder = path.parent
        if will_create is not None and folder.resolve() == will_create.resolve():
            return
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ValueError(f"mlflow-uri {uri!r}: folder {folder} does not exist or is not writable")
        return
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ValueError(f"mlflow-uri {uri!r} cannot be reached: {reason}") from None
        return
    if parsed.scheme in ("postgresql", "mysql", "mssql") or parsed.scheme.startswith(
        ("postgresql+", "mysql+", "mssql+")
    ):
        return  # opened (and checked) by ensure_experiment before anything is written
    raise ValueError(
        f"mlflow-uri must be sqlite:///…, http(s)://… or a database URI, got {uri!r} "
        "(MLflow 3 refuses the plain file store)"
    )


def check_experiment(uri: str, name: str):
    """The experiment of this name, or None; ValueError if it was deleted in MLflow (a sweep's
    runs could not be written into it)."""
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    if experiment is not None and experiment.lifecycle_stage == "deleted":
        raise ValueError(
            f"MLflow experiment {name!r} was deleted: restore it (mlflow experiments restore "
            f"--experiment-id {experiment.experiment_id}) or choose another --name"
        )
    return experiment


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _creating_store(uri: str):
    """One process at a time creates (or migrates) a SQLite store: MLflow's table creation is not
    safe against a second process opening the same new file ("table … already exists", or a store
    corrupted for good). Two sweeps into one results dir start exactly so."""
    # MLflow announces each table it creates: on the console of every new sweep, and before the
    # one line of a usage error when the store cannot be made.
    chatty = [logging.getLogger(name) for name in ("mlflow.store.db.utils", "alembic")]
    levels = [logger.level for logger in chatty]
    for logger in chatty:
        logger.setLevel(logging.WARNING)
    path = _sqlite_path(uri)
    try:
        if path is None:
            yield  # a server or a database serialises this itself
            return
        path.parent.mkdir(parents=True, exist_ok=True)  # as MLflow would, for the store itself
        with open(path.with_name(f".{path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        for logger, level in zip(chatty, levels, strict=True):
            logger.setLevel(level)


def ensure_experiment(uri: str, name: str, artifact_location: str | None = None) -> str:
    """Create the store and the experiment once, in the driver, before any trial starts:
    several processes creating an empty SQLite store at once corrupt it (alembic races)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with _creating_store(uri):
        experiment = check_experiment(uri, name)
        if experiment is not None:
            return experiment.experiment_id
        client = MlflowClient(tracking_uri=uri)
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:
            # Another process made it since we looked (a server store, which the lock skips).
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id


def experiment_runs(uri: str, experiment_name: str, sweep_id: str):
    """One sweep run's MLflow runs as MLflow's own DataFrame (params.*, metrics.*, tags.*)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(
        experiment_names=[experiment_name],
        filter_string=f"tags.`{SWEEP_ID_TAG}` = '{sweep_id}'",
        max_results=100_000,
    )
