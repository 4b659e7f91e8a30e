"""Starting the service: refuse unsafe exposure, print where it listens, run uvicorn.

`serve(config, host, port, workers)` is what `scalefit serve` runs. A server that accepts writes and
listens on a non-loopback address must have a token (`--token` or `SCALEFIT_TOKEN`); a read-only one may
listen anywhere. With several workers uvicorn starts that many processes, each building the app from the
config in the environment (`service.app.app_from_env`); they share the registry, and each runs jobs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys

from scaling.errors import UserError
from service.app import CONFIG_ENV, ServiceConfig
from service.registry import Registry

__all__ = ["check_exposure", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1) or `localhost`."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, config: ServiceConfig) -> None:
    """Refuse (a `UserError`) to accept writes on a non-loopback address without a token."""
    if not is_loopback(host) and not config.read_only and not config.token:
        raise UserError(
            f"refusing to accept writes on {host} without a token: pass --token (or set SCALEFIT_TOKEN), "
            "or --read-only, or bind to 127.0.0.1",
            param="host",
        )
    if config.token is not None and len(config.token) < 8:
        raise UserError("token must be at least 8 characters long", param="token")


def _safe_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def serve(
    config: ServiceConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "warning",
    access_log: bool = False,
) -> None:
    """Check the exposure, open the registry, print the banner and run uvicorn until stopped."""
    import uvicorn

    if not 0 <= port <= 65535:
        raise UserError(f"port must be in 0..65535, got {port}", param="port")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}", param="workers")
    check_exposure(host, config)
    try:
        registry = Registry(config.store, config.db_url)
    except OSError as exc:
        raise UserError(f"cannot open the store {config.store}: {exc.strerror or exc}") from None
    except Exception as exc:  # SQLAlchemy: bad URL, unreachable database, missing driver
        raise UserError(
            f"cannot open the database {_safe_url(config.db_url or '')}: {str(exc).splitlines()[0]}"
        ) from None
    n_fits = len(registry.list_fits())
    url = registry.url
    registry.close()
    writes = {
        "token": "writes need the bearer token",
        "open": "writes open to local users (no token; loopback only)",
        "disabled": "read-only",
    }[config.writes]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"scalefit serve: http://{shown}:{port}/  (API docs /docs; {workers} worker(s))\n"
        f"store {os.path.abspath(config.store)}, database {_safe_url(url)}, {n_fits} fit(s); {writes}",
        file=sys.stderr,
        flush=True,
    )
    os.environ[CONFIG_ENV] = config.to_env()
    uvicorn.run(
        "service.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
    )
