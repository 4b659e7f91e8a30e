"""A real `scalefit serve` process on a free loopback port, for the tests and `bench/serve.py`.

    with LiveServer(store, token="t0ken-for-tests") as server:
        httpx.get(server.url + "/api/health")

The server runs the console command in a subprocess (`python -c "from cli.main import app; app()" serve`),
so what is tested is what a user starts; its output goes to `<store>/server.log`. `kill()` sends SIGKILL
(a crash), `stop()` SIGTERM (uvicorn shuts down cleanly).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["LiveServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`scalefit serve --store STORE` on 127.0.0.1 (module docstring)."""

    def __init__(
        self,
        store: str | Path,
        token: str | None = None,
        workers: int = 1,
        args: tuple[str, ...] = (),
        port: int | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.store = Path(store)
        self.token = token
        self.workers = workers
        self.args = args
        self.port = port or free_port()
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header writes need (empty without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def log(self) -> str:
        path = self.store / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> LiveServer:
        self.store.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-c", "from cli.main import app; app()", "serve", "--store", str(self.store)]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers), *self.args]
        env = {k: v for k, v in os.environ.items() if k != "SCALEFIT_TOKEN"}
        if self.token:
            env["SCALEFIT_TOKEN"] = self.token
        with open(self.store / "server.log", "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"scalefit serve exited with {self.proc.returncode}:\n{self.log[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"scalefit serve did not answer within {self.timeout:g} s:\n{self.log[-3000:]}")

    def _signal_group(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)  # the server and, with --workers > 1, its worker processes
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the server (and its workers): a crash, nothing shuts down cleanly."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 20 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
