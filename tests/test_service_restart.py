"""Accepted jobs survive a crash: SIGKILL the server while a fit job runs, restart it on the same store,
and the job completes exactly once (one stored fit), as does a job still queued behind it. Plus the
registry's compare-and-set rules that make it so, on a real SQLite file."""

from __future__ import annotations

import sqlite3
import time

import httpx
from test_service_api import synthetic_runs, upload, wait_job

from service.jobs import JobRunner, owner_gone
from service.live import LiveServer
from service.registry import Registry

TOKEN = "restart-token-0123"


def _db(store) -> sqlite3.Connection:
    return sqlite3.connect(store / "registry.sqlite")


def test_sigkill_during_a_fit_job_then_restart_completes_it_once(tmp_path) -> None:
    store = tmp_path / "store"
    server = LiveServer(store, token=TOKEN).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            runs = upload(client, server, synthetic_runs(seed=5))
            base = {"runs_id": runs["id"], "map": {"N": "params", "D": "tokens"}, "holdout": 0}
            long_job = client.post(
                "/api/jobs", json={**base, "bootstrap": 4000}, headers=server.headers
            ).json()
            queued = client.post("/api/jobs", json={**base, "bootstrap": 0}, headers=server.headers).json()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # kill once the fit is under way
                job = client.get(f"/api/jobs/{long_job['id']}").json()
                if job["status"] == "running":  # progress reaches the database only every 2 s (heartbeat)
                    time.sleep(0.5)
                    break
                assert job["status"] in ("queued", "running"), job
                time.sleep(0.05)
            else:
                raise AssertionError(f"the job never started: {job}")
    finally:
        server.kill()
    with _db(store) as db:
        rows = dict(db.execute("select id, status from jobs").fetchall())
        assert rows == {long_job["id"]: "running", queued["id"]: "queued"}
        assert db.execute("select count(*) from fits").fetchone() == (0,)

    with LiveServer(store, token=TOKEN) as again, httpx.Client(base_url=again.url, timeout=60) as client:
        done = wait_job(client, long_job["id"], timeout=300)
        second = wait_job(client, queued["id"], timeout=300)
        assert done["status"] == "done" and done["attempts"] == 2, done
        assert second["status"] == "done" and second["attempts"] == 1, second
        fit = client.get(f"/api/fits/{done['fit_id']}").json()
        assert fit["job_id"] == long_job["id"] and fit["n_boot"] > 3600
        time.sleep(1.5)  # nothing else finishes it a second time
        with _db(store) as db:
            per_job = dict(db.execute("select job_id, count(*) from fits group by job_id").fetchall())
        assert per_job == {long_job["id"]: 1, queued["id"]: 1}
        assert len(client.get("/api/fits").json()) == 2


def test_only_the_owner_finishes_a_job_and_dead_owners_are_requeued(tmp_path) -> None:
    reg = Registry(tmp_path / "store")
    job, new = reg.add_job("fit", {"runs_id": "x", "law": "chinchilla"})
    assert new and job["status"] == "queued"
    a, b = "host-a:1:1:aaaa", "host-b:2:2:bbbb"
    assert reg.claim_job(job["id"], a) and not reg.claim_job(job["id"], b)  # one claimant wins
    fit = {"content": {"law": {}, "params": {}}, "name": "n", "law": "chinchilla"}
    assert reg.requeue(job["id"], a, "owner gone") and reg.claim_job(job["id"], b)  # taken over
    assert not reg.finish_job(job["id"], a, status="done", progress="done", fit=fit)  # the old owner: no
    assert reg.list_fits() == []
    assert reg.finish_job(job["id"], b, status="done", progress="done", fit=fit)
    assert not reg.finish_job(job["id"], b, status="done", progress="done", fit=fit)  # only once
    assert [f["job_id"] for f in reg.list_fits()] == [job["id"]]
    assert reg.get_job(job["id"])["attempts"] == 2

    now = time.time()
    runner = JobRunner(reg)
    assert not owner_gone(runner.owner, now, now)  # this process, fresh heartbeat
    assert owner_gone(
        runner.owner.replace(runner.owner.split(":")[1], "999999999", 1), now, now
    )  # no such pid
    assert owner_gone("elsewhere:1:1:x", now - 60, now) and not owner_gone("elsewhere:1:1:x", now - 1, now)
    reg.close()
