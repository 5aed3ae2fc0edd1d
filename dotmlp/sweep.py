"""Run a sweep from validated settings: connect to Ray, prepare MLflow, fit or resume, analyse."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

from dotmlp import record as sweep_record
from dotmlp.config import SweepSettings

# What `--resume` may change: where trials run and how the console looks, never what they train
# (nor the kind of device they train on: check_device_kind).
RESUMABLE_CHANGES = ("cpus_per_trial", "gpus_per_trial")


class UsageError(Exception):
    """Bad input found once Ray or the stores are reachable; nothing has been written."""


GCS_PORT = 6379  # `ray start --head`'s default: what --address wants
DASHBOARD_PORT = 8265  # the dashboard and job API, which `ray job submit` wants instead
# A client's HTTP/2 preface and an empty SETTINGS frame: the start of any gRPC call.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
PROBE_TIMEOUT_S = 5


def _first_bytes(host: str, port: int, payload: bytes, drain: bool = False) -> bytes:
    """What the server at host:port sends first after payload (b"" if it says nothing in time);
    drain: read on to the end of the answer, as an HTTP/1.0 client would."""
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as conn:
        conn.settimeout(PROBE_TIMEOUT_S)
        conn.sendall(payload)
        reply = b""
        try:
            reply = conn.recv(64)
            while drain and reply and len(reply) < 65536:  # a short answer, then the server closes
                more = conn.recv(65536)
                if not more:
                    break
                reply += more
        except (TimeoutError, OSError):
            pass
        return reply


def _speaks_http2(host: str, port: int) -> bool:
    # A gRPC server (Ray's GCS) answers with a SETTINGS frame: 3 bytes length, then type 0x4.
    reply = _first_bytes(host, port, HTTP2_PREFACE)
    return len(reply) >= 9 and reply[3] == 0x04


def _http_hint(host: str, port: int) -> str | None:
    """If host:port answers HTTP/1, say what it looks like and what to use instead."""
    request = f"GET /api/version HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    try:
        reply = _first_bytes(host, port, request, drain=True)
    except OSError:
        return None
    if not reply.startswith(b"HTTP/"):
        return None
    rays = b"ray_version" in reply  # what Ray's dashboard answers there
    what = "is Ray's dashboard / job API" if rays else "looks like a dashboard or job API"
    return (
        f"answers HTTP, not as Ray's GCS does: it {what}. --address wants the cluster's GCS "
        f"(host:{GCS_PORT} by default; 'auto' on a node of the cluster); the job API (the "
        f"dashboard's port, {DASHBOARD_PORT} by default) is for "
        f"`ray job submit --address http://{host}:{port}`"
    )


def _resolve_auto() -> str | None:
    """The address 'auto' stands for (RAY_ADDRESS, or the last `ray start` here), if any."""
    from ray._private.services import canonicalize_bootstrap_address

    from_env = os.environ.get("RAY_ADDRESS", "")
    if from_env.startswith(("http://", "https://")):
        return from_env  # set for `ray job submit`; probe says what it is
    try:
        return canonicalize_bootstrap_address("auto")
    except (ConnectionError, ValueError):
        return None  # ray.init says at once that no cluster runs here


def probe(address: str) -> None:
    """Fail fast, in one line, on an address where no Ray cluster answers: ray.init retries the
    GCS for minutes, printing C++ warnings, whether nothing listens there or a web server does
    (the dashboard's 8265 given instead of the GCS's 6379)."""
    if address == "local":
        return
    given = address
    if address == "auto":
        address = _resolve_auto()
        if address is None:
            return
    if address.startswith(("http://", "https://")):
        raise UsageError(
            f"address {given!r} is an HTTP URL ({address}), the dashboard / job API: --address "
            f"wants the cluster's GCS address (host:{GCS_PORT} by default, or 'auto' on a cluster "
            "node); the URL is for `ray job submit --address`"
        )
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise UsageError(f"address must be 'auto' or host:port, got {given!r}")
    host = host.strip("[]") or "127.0.0.1"
    label = repr(given) if given == address else f"{given!r} ({address})"
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as error:
        raise UsageError(f"address {label} cannot be reached: {error}") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS GCS waits for the client's hello; the TCP check is what we can do
    if not _speaks_http2(host, int(port)):
        hint = _http_hint(host, int(port))
        raise UsageError(
            f"address {label} " + (hint or "does not answer like a Ray cluster's GCS (gRPC)")
        )



# Lines of Ray's Python logging at ERROR and of its C++ logging at E(rror) or C(ritical).
RAY_ERROR_LINE = re.compile(r"^\S+ \S+\s+ERROR |^\[[^\]]* [EC] \d+ \d+\]")


@contextlib.contextmanager
def _ray_startup_quiet():
    """Hold back what Ray prints while it starts or joins a cluster (its token-auth notice,
    C++ connection warnings), so that a usage error is one line. Its error lines still show,
    and all of it does if ray.init fails for a reason that is not the user's."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        passed_on = b""
        try:
            yield
            held.seek(0)
            text = held.read().decode(errors="replace").splitlines(keepends=True)
            passed_on = "".join(line for line in text if RAY_ERROR_LINE.match(line)).encode()
        except UsageError:
            raise
        except BaseException:
            held.seek(0)
            passed_on = held.read()
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.write(2, passed_on)


def _failure_reason(error: BaseException) -> str:
    """The first line of what went wrong, and what to do when it is the cluster's token."""
    chain, cause = [], error
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any("AuthenticationError" in f"{type(e).__name__} {e}" for e in chain):
        return (
            "the cluster wants Ray's token authentication: set RAY_AUTH_MODE=token, with the "
            "cluster's token in ~/.ray/auth_token or RAY_AUTH_TOKEN (a job started with "
            "`ray job submit` on the cluster gets both)"
        )
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _env(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def connect(address: str | None) -> bool:
    """Connect to Ray: the cluster at address, else a new local runtime; or, with no address, the
    runtime this process already started (a notebook's, a test session's), which is then its
    caller's to stop. Returns whether this call started one (and so must stop it)."""
    import ray

    if not address and ray.is_initialized():
        return False
    # ray.init retries a cluster's GCS 20 times, a second apart; the probe has seen it answer,
    # so a few tries tell a refusal (a wrong token) from a slow start.
    retries = {} if not address or "RAY_gcs_server_port_wait_time_s" in os.environ else {
        "RAY_gcs_server_port_wait_time_s": "5"
    }
    with _ray_startup_quiet(), _env(**retries):
        if address:
            probe(address)  # resolving 'auto' can warn of other Ray instances here: held back too
        try:
            # "local" forces a new runtime: a bare ray.init() would join any cluster left running here.
            ray.init(
                address=address or "local",
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
            raise UsageError(f"address {address!r} cannot be reached: {_failure_reason(error)}") from None
    # Started: Ray's and Tune's warnings during the sweep are the user's to see.
    logging.getLogger("ray").setLevel(logging.WARNING)
    return True


def resume_settings(record: dict, given: SweepSettings, given_fields: set[str]) -> SweepSettings:
    """The settings a sweep started with (its record), with the resources given now. A setting
    given on the command line that differs from the record's is a usage error naming it: a
    resumed sweep trains what it started to train."""
    started = sweep_record.settings(record)
    differ = sorted(
        field for field in given_fields - set(RESUMABLE_CHANGES)
        if getattr(given, field) != getattr(started, field)
    )
    if differ:
        listed = ", ".join(f"{f} {getattr(given, f)!r} (sweep: {getattr(started, f)!r})" for f in differ)
        raise UsageError(f"--resume continues {record['name']!r} with the settings it started with; "
                         f"leave out or match: {listed}")
    return started.replace(**{field: getattr(given, field) for field in RESUMABLE_CHANGES
                              if field in given_fields})


def check_device_kind(record: dict, trial_resources: dict) -> None:
    """--resume keeps every trial on the kind of device it started on: a trial moved between the
    CPU and a GPU would go on from its checkpoint with another training stream (generators'
    states do not carry across devices) and, at a GPU share, another device's arithmetic. The
    share itself may change (0.25 to 0.5 GPU, 1 to 2 CPUs); 0 to > 0, or back, is a usage error."""
    def kind(gpus) -> str:
        return "GPU" if float(gpus or 0) > 0 else "CPU"

    before = record.get("resources", {}).get("gpu", 0)
    now = trial_resources.get("gpu", 0)
    if kind(before) != kind(now):
        raise UsageError(
            f"--resume: gpus-per-trial {float(now or 0):g} would move the trials of "
            f"{record['name']!r} from the {kind(before)} they started on (gpus-per-trial "
            f"{float(before or 0):g}) to the {kind(now)}; give a gpus-per-trial "
            + ("of 0" if kind(before) == "CPU" else "> 0") + " to resume it")


def run(
    settings: SweepSettings,
    name: str,
    results_dir: Path,
    storage: str | None = None,
    mlflow_uri: str | None = None,
    address: str | None = None,
    resume: bool = False,
    given_fields: set[str] | frozenset = frozenset(),
    max_failures: int = 2,
    figures: bool = True,
    verbose: int = 1,
    timeline: str | None = None,
) -> dict:
    """Run (or resume) the sweep and return its summary; with timeline, also write Ray's
    timeline of tasks and actor calls there (as ray.timeline does).

    storage, mlflow_uri: None for the results dir's own (and, on resume, for the record's).
    address: None for a new local runtime, or the one this process has started already (which is
    left running; its timeline then holds whatever else it ran).
    given_fields: the settings the user gave explicitly (resume checks them against the record).
    """
    started_at = time.perf_counter()
    if address and address != "auto":
        # Before the imports below (Tune, Lightning and torch: tens of seconds on a loaded
        # machine): a wrong address is said in seconds. connect() probes 'auto' once resolved.
        probe(address)
    # Tune's legacy reporter honours the columns and the report interval the CLI asks for;
    # the new output engine prints a box per finished trial, 200 of them in a default sweep.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Short trials checkpoint often, so Tune snapshots its state often and warns at every one;
    # a snapshot of a few hundred small trials is cheap (measured in benchmarks/README.md).
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if resume:
        # Before the imports below too: a sweep that is not there, or settings that differ from
        # its record, are said in a second.
        try:
            record = sweep_record.load(results_dir, name)
        except FileNotFoundError:
            raise UsageError(f"--resume: no sweep named {name!r} to resume in {results_dir}") from None
        settings = resume_settings(record, settings, set(given_fields))
    import ray

    from dotmlp import analysis, tracking
    from dotmlp.tune import scheduler, tuner

    if resume:
        storage = storage or sweep_record.storage(record, results_dir)
        mlflow_uri = mlflow_uri or sweep_record.mlflow_uri(record, results_dir)
        if not tuner.can_resume(storage, name):
            raise UsageError(f"--resume: no Tune experiment named {name!r} to resume in {storage}")
        left = unfinished_trials(tuner.experiment_path(storage, name))
    else:
        record, left = None, None
        if sweep_record.path(results_dir, name).exists() or (Path(results_dir) / name / "tuner.pkl").exists():
            raise UsageError(
                f"a sweep named {name!r} already exists in {results_dir}: "
                "pass --resume to continue it, or choose another --name"
            )
    own_storage, own_store = storage is None, mlflow_uri is None
    storage = storage or str(Path(results_dir).resolve())
    mlflow_uri = mlflow_uri or tracking.default_uri(results_dir)
    path = tuner.experiment_path(storage, name)
    if not resume and "://" not in storage and (Path(path) / "tuner.pkl").exists():
        raise UsageError(
            f"an experiment named {name!r} already exists in {storage}: "
            "pass --resume to continue it, or choose another --name"
        )
    check_store(mlflow_uri, name)
    if timeline:
        # Ray records the timeline only when told before it starts (a local runtime's workers
        # inherit the variable; a cluster's nodes need it set where they start).
        os.environ.setdefault("RAY_PROFILING", "1")
    own_ray = connect(address)
    ray_start_seconds = time.perf_counter() - started_at
    try:
        cluster = ray.cluster_resources()
        trial_resources = tuner.resources(settings, cluster.get("GPU", 0))
        if resume:
            check_device_kind(record, trial_resources)
        if address is None:
            # A trial asking for more than this machine has waits forever: say so now.
            if trial_resources["gpu"] > cluster.get("GPU", 0):
                raise UsageError(
                    f"gpus-per-trial {trial_resources['gpu']} but this machine has "
                    f"{cluster.get('GPU', 0):g} GPUs visible to Ray: trials would wait forever"
                )
            if trial_resources["cpu"] > cluster.get("CPU", 0):
                raise UsageError(
                    f"cpus-per-trial {trial_resources['cpu']:g} but this machine has "
                    f"{cluster.get('CPU', 0):g} CPUs visible to Ray: trials would wait forever"
                )
        prepare_store(mlflow_uri, name, results_dir)
        out = Path(results_dir) / name
        out.mkdir(parents=True, exist_ok=True)
        if record is None:
            record = sweep_record.new(settings, name, None if own_storage else storage,
                                      None if own_store else mlflow_uri, trial_resources,
                                      scheduler.rung_milestones(settings))
            # Tune.restore keeps the first run's FailureConfig: the record says what a resume gets.
            record["max_failures"] = max_failures
        else:
            record = {**record, "resources": trial_resources}
        sweep_record.write(results_dir, name, record)
        if resume:
            if left:
                rungs = ("" if not settings.asha else
                         "; its rungs as they were left" if settings.halves_synchronously else
                         "; ASHA's rung records are not restored (ray-project/ray#30838): resumed "
                         "trials are compared only with results reported after the restart")
                print(f"Resuming {name}: {left} trials left to run{rungs}.")
        fit_seconds, first_error = 0.0, None
        if left != 0:
            if resume:
                try:
                    restored = tuner.restore_tuner(settings, storage, name, trial_resources,
                                                   mlflow_uri)
                except ValueError as error:
                    raise UsageError(str(error)) from None
            else:
                restored = tuner.make_tuner(settings, name, storage, mlflow_uri, trial_resources,
                                            sweep_record.sweep_id(record), max_failures, verbose)
            fit_started = time.perf_counter()
            grid = restored.fit()
            fit_seconds = time.perf_counter() - fit_started
            first_error = next((last_line(error) for error in grid.errors), None)
        if timeline:
            ray.timeline(str(timeline))
    finally:
        if own_ray:
            ray.shutdown()
    table = analysis.build(results_dir, name, figures=figures, mlflow_uri=mlflow_uri)
    summary = analysis.summarize(table, record)
    summary.update(fit_seconds=fit_seconds, ray_start_seconds=ray_start_seconds,
                   wall_seconds=time.perf_counter() - started_at, nothing_to_run=left == 0,
                   figures=figures, asha=settings.asha, first_error=first_error,
                   max_failures=record.get("max_failures", 2))  # 2: the default before it was recorded
    print(analysis.format_summary(summary, out))
    return summary


def last_line(error: BaseException) -> str:
    """A trial's exception as Ray hands it over (its whole remote traceback): the line that says
    what went wrong."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def prepare_store(mlflow_uri: str, name: str, results_dir: Path) -> None:
    """Create the MLflow store and experiment once, in the driver, before any trial logs (a new
    SQLite store opened by several processes at once is corrupted); artifacts beside a SQLite
    store, not in ./mlruns wherever the command started. Any failure is the user's URI: one line."""
    from dotmlp import tracking

    artifacts = None
    if mlflow_uri.startswith("sqlite:"):
        artifacts = (Path(results_dir).resolve() / "mlartifacts").as_uri()
    try:
        tracking.ensure_experiment(mlflow_uri, name, artifacts)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UsageError(f"mlflow-uri {mlflow_uri!r} cannot be used: {first}") from None


def check_store(mlflow_uri: str, name: str) -> None:
    """An existing store whose experiment of this name was deleted cannot take the sweep's runs:
    say so before Ray starts or anything is written (a store not made yet is made later, once)."""
    from dotmlp import tracking

    if mlflow_uri.startswith("sqlite:///") and not Path(mlflow_uri[len("sqlite:///"):]).exists():
        return
    try:
        tracking.check_experiment(mlflow_uri, name)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"mlflow-uri {mlflow_uri!r} cannot be used: {first}") from None


def unfinished_trials(experiment_path: str) -> int:
    """How many of a stored experiment's trials are left to run: not ended, or errored (resume
    runs those again from their last checkpoint). None: nothing to resume."""
    from ray.tune import ExperimentAnalysis

    # Trials that never started have no results: Tune warns once per trial (a line for each of
    # the hundreds an interrupted sweep leaves), about what this count already says.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    trials = ExperimentAnalysis(experiment_path).trials
    return sum(trial.status != "TERMINATED" for trial in trials)


def run_frontier(
    settings,
    results_dir: Path,
    name: str = "frontier",
    ledger: str | Path | None = None,
    mlflow_uri: str | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float | None = None,
    max_failures: int = 2,
    verbose: int = 1,
) -> dict:
    """Run the frontier search (dotmlp.frontier) until every task is decided, or until stopped.

    settings: a dotmlp.frontier.FrontierSettings. The ledger (<results-dir>/<name>/candidates.csv;
    candidates-bf16.csv for precision bf16, candidates-multiply.csv with the flag)
    is the search's memory: each finished run is appended to it as it finishes, and a search
    started again on it trains only what it lacks. Every invocation is a new Tune experiment
    (<results-dir>/<name>/search-<time>/, not committed) and writes its runs to MLflow."""
    import ray

    from dotmlp import frontier, tracking
    from dotmlp.tune import tuner
    from dotmlp.tune.frontier import FrontierSearcher

    started_at = time.perf_counter()
    results_dir = Path(results_dir)
    ledger = Path(ledger) if ledger else results_dir / name / settings.ledger_name
    mlflow_uri = mlflow_uri or tracking.default_uri(results_dir)
    check_store(mlflow_uri, name)
    # What trials share (their own config sets steps, width, depth and lr): cosine to zero over
    # each run's budget, its K seeds, evaluations at a quarter, half and all of it.
    shared = SweepSettings(num_samples=1, max_steps=settings.first_samples // settings.batch_size,
                           reports=3, batch_size=settings.batch_size, schedule="cosine",
                           seeds=settings.seeds, asha=False, dimensions=settings.dimensions,
                           depths=settings.depths, multiply=(settings.multiply,),
                           cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    own_ray = connect(address)
    try:
        trial_resources = tuner.resources(shared, ray.cluster_resources().get("GPU", 0))
        prepare_store(mlflow_uri, name, results_dir)
        device = "cuda" if trial_resources["gpu"] > 0 else "cpu"
        searcher = FrontierSearcher(settings, ledger, cpus=cpus_per_trial, device=device)
        known = len(searcher.ledger)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        storage = str((results_dir / name).resolve())
        search = tuner.make_frontier_tuner(searcher, shared, f"search-{stamp}", name, storage,
                                           mlflow_uri, trial_resources, f"{name}-{stamp}",
                                           max_failures, verbose)
        print(f"Frontier search: {len(settings.tasks())} tasks, {known} runs already in {ledger}.")
        search.fit()
    finally:
        if own_ray:
            ray.shutdown()
    ledger_now = frontier.load_ledger(ledger)
    decided = [o for o in frontier.outcomes(settings, ledger_now) if not isinstance(o, frontier.Task)]
    summary = {"tasks": len(settings.tasks()), "decided": len(decided),
               "runs_before": known, "runs_after": len(ledger_now), "ledger": str(ledger),
               "wall_seconds": time.perf_counter() - started_at}
    print(f"Frontier search: {summary['decided']} of {summary['tasks']} tasks decided; "
          f"{summary['runs_after'] - known} runs added to {ledger} ({summary['runs_after']} in all).")
    return summary
