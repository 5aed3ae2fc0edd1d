"""The MLflow side: where the store is, checking it can be opened, and the sweep's experiment."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

# Tags that tie an MLflow run to its Tune trial; analysis joins on them.
SWEEP_TAG = "dotmlp.sweep"
TRIAL_TAG = "tune.trial_id"
STATUS_TAG = "dotmlp.status"


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


def ensure_experiment(uri: str, name: str) -> str:
    """Create the store and the experiment once, in the driver, before any trial starts:
    several processes creating an empty SQLite store at once corrupt it (alembic races)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name)


def experiment_runs(uri: str, experiment_name: str, sweep_name: str):
    """The sweep's runs as MLflow's own DataFrame (params.*, metrics.*, tags.* columns)."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(
        experiment_names=[experiment_name],
        filter_string=f"tags.`{SWEEP_TAG}` = '{sweep_name}'",
        max_results=100_000,
    )
