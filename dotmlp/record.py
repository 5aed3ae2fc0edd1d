"""A sweep's record, `<results-dir>/<name>/sweep.json`: what it was started with, and where its parts are.

The record holds no absolute path of the machine that wrote it: the Tune experiment is
`<results-dir>/<name>` and the MLflow store `<results-dir>/mlflow.db` unless the sweep was told
otherwise (an `s3://…` storage, an `http://…` MLflow server), so a results dir can be moved,
copied or fetched and still be read, and resumed into its own store.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from dotmlp.config import SweepSettings

RECORD_FILE = "sweep.json"


def path(results_dir: str | os.PathLike, name: str) -> Path:
    return Path(results_dir) / name / RECORD_FILE


def new(settings: SweepSettings, name: str, storage: str | None, mlflow_uri: str | None,
        resources: dict, rungs: list[int]) -> dict:
    """A new sweep's record. storage and mlflow_uri: None where they are the results dir's own."""
    return {
        # A new id for every new sweep, so a name used again never adopts an old sweep's runs.
        "sweep_id": uuid.uuid4().hex,
        "name": name,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings.to_dict(),
        "storage": storage,
        "mlflow_uri": mlflow_uri,
        "resources": resources,
        "rungs": rungs,
        "ladder": settings.ladder,
    }


def load(results_dir: str | os.PathLike, name: str) -> dict:
    file = path(results_dir, name)
    if not file.exists():
        raise FileNotFoundError(f"no sweep named {name!r} in {results_dir} ({file} is missing)")
    return json.loads(file.read_text())


def write(results_dir: str | os.PathLike, name: str, record: dict) -> None:
    write_atomically(path(results_dir, name), json.dumps(record, indent=2) + "\n")


def write_atomically(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


# Settings added after sweeps were first recorded, with what every sweep did before: a record
# without one means that, not the current default.
BEFORE_RECORDED = {"halving": "asynchronous"}


def settings(record: dict) -> SweepSettings:
    return SweepSettings(**{**BEFORE_RECORDED, **record["settings"]})


def storage(record: dict, results_dir: str | os.PathLike) -> str:
    """Where Tune keeps the experiment's folder: the record's own storage, or the results dir."""
    return record.get("storage") or str(Path(results_dir).resolve())


def experiment_path(record: dict, results_dir: str | os.PathLike) -> str:
    root = storage(record, results_dir)
    name = record["name"]
    return f"{root.rstrip('/')}/{name}" if "://" in root else str(Path(root) / name)


def mlflow_uri(record: dict, results_dir: str | os.PathLike) -> str:
    from dotmlp import tracking

    return record.get("mlflow_uri") or tracking.default_uri(results_dir)


def sweep_id(record: dict) -> str:
    return record.get("sweep_id") or record["name"]  # records before sweep ids: the name
