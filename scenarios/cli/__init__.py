"""The `fleetwatch` command line.

Every module in this package that defines a module-level `app` (a `typer.Typer` with a name) becomes a
subcommand group; a module that defines `register(app)` adds top-level commands. Adding a command is one
file. Errors meant for a person are `ServiceError`/`typer.BadParameter`: one line, exit code 2.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer

app = typer.Typer(
    name="fleetwatch",
    help="FleetWatch — real-time monitoring and route compliance for a city's five vehicle kinds (五车监管).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _load_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        sub = getattr(module, "app", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub)
        register = getattr(module, "register", None)
        if callable(register):
            register(app)


_load_commands()


def main() -> None:
    from tracker.edges.services import ServiceError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ServiceError as exc:
        print(f"fleetwatch: error: {exc}", file=sys.stderr)
        sys.exit(2)
