import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every trial's log lines in a failing test's output, not "repeated 5x across cluster".
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def run_cli():
    """Run one of the project's real entry points in a subprocess, as a user would."""
    import subprocess

    def run(*args: str, timeout: float = 600, env: dict | None = None, cwd: Path = ROOT):
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    return run
