"""Command-line plumbing shared by the entry points: usage errors are one line and exit 2."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from dotmlp.config import ConfigError

USAGE_ERROR = 2


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints the whole usage block; one line is enough
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def fail(prog: str, message: str, code: int = USAGE_ERROR):
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def int_list(name: str, text: str, minimum: int = 1) -> tuple[int, ...]:
    """'16,8,4' -> (16, 8, 4); an empty list, an empty item ('8,,4') or a non-integer is an error
    (a silently dropped item would train another model than the one asked for)."""
    items = text.split(",")
    try:
        values = tuple(int(item) for item in items)
    except ValueError:
        values = ()
    if not values or any(value < minimum for value in values):
        raise ConfigError(f"{name} must be comma-separated integers >= {minimum}, got {text!r}")
    return values


def quiet_lightning() -> None:
    """Lightning's banners (GPU available…, seed set…) drown the one line a user wants.
    Lightning sets its loggers' levels when imported, so import it first."""
    import pytorch_lightning  # noqa: F401

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", module="lightning_fabric")
