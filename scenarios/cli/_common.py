"""What several subcommands share: the coordinate-system choice, who is acting (for the audit log), and the
one-line error exit."""

from __future__ import annotations

import getpass
import os
from enum import Enum

import typer


class CrsOption(str, Enum):  # typer needs a plain str Enum for choices
    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def actor() -> str:
    """The audit log's actor for a command-line change: FLEETWATCH_ACTOR, else the login name."""
    return os.environ.get("FLEETWATCH_ACTOR") or f"cli:{getpass.getuser()}"


def fail(message: object) -> None:
    """One line on stderr, exit status 2 (bad input, not a crash)."""
    typer.echo(f"fleetwatch: error: {message}", err=True)
    raise typer.Exit(2)
