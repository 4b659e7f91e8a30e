"""The `scalefit` app: registers one command per module and turns every input or disk problem into one line.

- `UserError` → `error: <message>` (library parameter names replaced by the command's flags);
- any OSError (missing file, full disk, read-only filesystem, a file where a directory belongs, ...) →
  `error: <path>: <cause>`, in this one place for every command (`fit --out`, `fit --plots`,
  `recommend --plot`, `sweep --out`, ...);
- command-line usage errors (unknown option, a value that is not a number, a missing argument) →
  `error: <click's message> (see scalefit <command> --help)`;
all on stderr with exit code 2 and never a traceback.

Command modules keep heavy imports (torch, scipy, pandas) inside the command function so that
`scalefit --help` and `scalefit recommend` start fast.
"""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any

import typer
from typer.core import TyperGroup

from cli import backtest, fit, laws, predict, recommend, serve, sweep, train
from scaling.errors import UserError, os_error_message
from scaling.version import __version__

try:  # typer >= 0.20 vendors click and raises its own copies of click's exceptions
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions


class _OneLineGroup(TyperGroup):
    """The command group, with click's usage errors as one `error:` line instead of a boxed usage text."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_exceptions.NoArgsIsHelpError as exc:
            exc.show()  # `scalefit` alone prints the help
            sys.exit(exc.exit_code)
        except click_exceptions.ClickException as exc:
            message = exc.format_message().strip().splitlines()[0].rstrip(".")
            ctx = getattr(exc, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"error: {message[:1].lower()}{message[1:]}{where}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into `head`: stop quietly
                sys.exit(1)
            raise
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="scalefit",
    help="Measure, fit and use scaling laws: sweep -> results.parquet -> fit.json -> predict / recommend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_OneLineGroup,
)


def _one_line_errors(fn: Callable[..., Any], flags: Mapping[str, str] | None = None) -> Callable[..., Any]:
    """Show `UserError` and every OSError as one `error: ...` line on stderr with exit code 2; library
    parameter names in the message become the command's flags (`flags`, the module's `FLAGS`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {str(exc.for_flags(flags or {})).splitlines()[0]}", err=True)
            raise typer.Exit(code=2) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            typer.echo(f"error: {os_error_message(exc)}", err=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


for _module in (train, sweep, fit, backtest, predict, recommend, serve, laws):
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
