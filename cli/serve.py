"""`scalefit serve`: the prediction service (HTTP API, fit registry, web page); docs/service.md."""

from __future__ import annotations

from typing import Annotated

import typer

FLAGS = {
    "host": "--host",
    "port": "--port",
    "workers": "--workers",
    "token": "--token",
}
"""Library parameter -> the flag that sets it (errors name the flag)."""


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    store: Annotated[
        str, typer.Option("--store", help="Store directory: registry.sqlite and the uploaded runs tables.")
    ] = "scalefit-store",
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="SQLAlchemy database URL (default: SQLite in --store), e.g. postgresql+psycopg://..."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="SCALEFIT_TOKEN",
            help="Bearer token required for writes (uploads, jobs, deletes).",
        ),
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="Refuse every write; no jobs run.")] = False,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes.")] = 1,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload (MiB).")] = 64.0,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest JSON request body (MiB).")
    ] = 16.0,
    max_points: Annotated[
        int, typer.Option("--max-points", help="Most points in one predict request.")
    ] = 100_000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "warning",
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve fits, predictions and recommendations over HTTP, with a web page at / and API docs at /docs.

    With no options: http://127.0.0.1:8000 on the store ./scalefit-store, the published laws ready at once."""
    from service.app import ServiceConfig
    from service.server import serve as run

    config = ServiceConfig(
        store=store,
        db_url=db,
        token=token,
        read_only=read_only,
        max_upload_mb=max_upload_mb,
        max_body_mb=max_body_mb,
        max_points=max_points,
    )
    run(config, host=host, port=port, workers=workers, log_level=log_level, access_log=access_log)


COMMANDS = {"serve": serve}
