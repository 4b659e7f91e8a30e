"""The `scalefit` app: registers one command per module and turns `UserError` into a one-line error.

Command modules keep heavy imports (torch, scipy, pandas) inside the command function so that
`scalefit --help` and `scalefit recommend` start fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any

import typer

from cli import backtest, fit, predict, recommend, sweep, train
from scaling.errors import UserError
from scaling.version import __version__

app = typer.Typer(
    name="scalefit",
    help="Measure, fit and use scaling laws: sweep -> results.parquet -> fit.json -> predict / recommend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _one_line_errors(fn: Callable[..., Any], flags: Mapping[str, str] | None = None) -> Callable[..., Any]:
    """Show `UserError` (and unreadable files) as `error: ...` on stderr with exit code 2; library
    parameter names in the message become the command's flags (`flags`, the module's `FLAGS`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {str(exc.for_flags(flags or {})).splitlines()[0]}", err=True)
            raise typer.Exit(code=2) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


for _module in (train, sweep, fit, backtest, predict, recommend):
    for _name, _fn in _module.COMMANDS.items():
        app.command(name=_name)(_one_line_errors(_fn, getattr(_module, "FLAGS", None)))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scalefit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Measure, fit and use scaling laws: sweep -> results.parquet -> fit.json -> predict / recommend."""


def main() -> None:  # pragma: no cover - exercised through the console script
    sys.exit(app())
