"""`scalefit laws`: the law forms in the registry and the published constant sets, one line each."""

from __future__ import annotations

from typing import Annotated

import typer


def laws(
    as_json: Annotated[bool, typer.Option("--json", help="Print name -> description as JSON.")] = False,
) -> None:
    """List the laws `fit --law` accepts and the published sets `predict`/`recommend --law` accept."""
    import json

    from fits.laws import list_laws

    table = list_laws()
    if as_json:
        typer.echo(json.dumps(table))
        return
    width = max(map(len, table))
    for name, text in table.items():
        typer.echo(f"{name:<{width}}  {text}")


COMMANDS = {"laws": laws}
