"""`scalefit serve` options over real HTTP: `--db` puts the registry where the SQLAlchemy URL says,
`--max-upload-mb` limits uploads, `--read-only` refuses every write, and bad options are the CLI's one
error line."""

from __future__ import annotations

import sqlite3

import httpx
from test_service_api import cli_error, one_line_error, synthetic_runs

import fits
from service.live import LiveServer

TOKEN = "config-token-0123456789"


def test_db_url_and_upload_limit(tmp_path) -> None:
    db = tmp_path / "elsewhere" / "team-registry.sqlite"
    db.parent.mkdir()
    store = tmp_path / "store"
    args = ("--db", f"sqlite:///{db}", "--max-upload-mb", "0.05")
    res = fits.fit(
        synthetic_runs(seed=9).rename(columns={"params": "N", "tokens": "D"}), n_boot=0, holdout=None
    )
    res.to_json(tmp_path / "fit.json")
    with LiveServer(store, token=TOKEN, args=args) as server, httpx.Client(base_url=server.url) as client:
        health = client.get("/api/health").json()
        assert health["limits"]["max_upload_bytes"] == int(0.05 * 2**20) and health["writes"] == "token"
        up = client.post(
            "/api/fits",
            files={"file": ("fit.json", (tmp_path / "fit.json").read_bytes())},
            headers=server.headers,
        )
        assert up.status_code == 201, up.text
        big = synthetic_runs(seed=9).sample(3000, replace=True, random_state=0).to_csv(index=False).encode()
        assert len(big) > 0.05 * 2**20
        r = client.post("/api/runs", files={"file": ("big.csv", big)}, headers=server.headers)
        assert one_line_error(r, 413) == "upload too large: the limit is 0.05 MiB"
        assert "team-registry.sqlite" in server.log  # the banner names the database it opened
    assert not (store / "registry.sqlite").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select id, law from fits").fetchall() == [(up.json()["id"], "chinchilla")]


def test_read_only_server_refuses_writes(tmp_path) -> None:
    csv = synthetic_runs().to_csv(index=False).encode()
    with (
        LiveServer(tmp_path / "store", args=("--read-only",)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.get("/api/health").json()["writes"] == "disabled"
        message = "this server is read-only (started with --read-only)"
        assert one_line_error(client.post("/api/runs", files={"file": ("r.csv", csv)}), 403) == message
        assert one_line_error(client.delete("/api/fits/abc"), 403) == message
        assert one_line_error(client.post("/api/jobs", json={"runs_id": "x"}), 403) == message
        r = client.post("/api/predict", json={"law": "kumar2024", "points": {"N": [1e9], "D": [2e10]}})
        assert r.status_code == 200 and client.get("/api/fits").json() == []  # reads work


def test_bad_serve_options_are_one_line(tmp_path) -> None:
    store = str(tmp_path / "s")
    assert cli_error("serve", "--store", store, "--db", "nosuchdialect://x/y").startswith(
        "cannot open the database nosuchdialect://x/y"
    )
    assert (
        cli_error("serve", "--store", store, "--token", "short")
        == "--token must be at least 8 characters long"
    )
    assert cli_error("serve", "--store", store, "--port", "70000") == "--port must be in 0..65535, got 70000"
    assert cli_error("serve", "--store", store, "--workers", "0") == "--workers must be at least 1, got 0"
    line = cli_error("serve", "--host", "192.0.2.1", "--store", store)
    assert line.startswith("refusing to accept writes on 192.0.2.1 without a token")
