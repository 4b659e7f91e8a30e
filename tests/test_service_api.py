"""`scalefit serve` over real HTTP: a uvicorn server on loopback with a real SQLite registry file.

One server (with a token) serves the whole module; each test uses its own uploads. Covers: laws and
published predictions, writes needing the token, upload → background fit job → stored fit → predict /
recommend / compare / plot / fit.json → delete, fit.json uploads, idempotent job submission, backtest
jobs, and bad input answered with a 4xx carrying the one line the CLI prints.
"""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fits
from cli.main import app
from service.live import LiveServer

TOKEN = "test-token-0123456789"


def synthetic_runs(seed: int = 0, noise: float = 0.01) -> pd.DataFrame:
    """A 5×5 grid of (N, D) runs from a known Chinchilla law with multiplicative noise."""
    rng = np.random.default_rng(seed)
    N = np.repeat([1e5, 3e5, 1e6, 3e6, 1e7], 5)
    D = np.tile([1e6, 3e6, 1e7, 3e7, 1e8], 5)
    loss = (1.7 + 400 / N**0.34 + 410 / D**0.28) * np.exp(rng.normal(0, noise, N.size))
    return pd.DataFrame({"params": N, "tokens": D, "loss": loss})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("store"), token=TOKEN) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def upload(client, server, df: pd.DataFrame, name: str = "runs.csv") -> dict:
    r = client.post(
        "/api/runs", files={"file": (name, df.to_csv(index=False).encode())}, headers=server.headers
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def wait_job(client, job_id: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def cli(*args: str, code: int = 0) -> tuple[str, str]:
    """(stdout, stderr) of `scalefit ARGS`, run in this process, which must exit with `code`."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output)
    return result.stdout, result.stderr


def cli_error(*args: str) -> str:
    """The one line `scalefit ARGS` prints on stderr for bad input (exit code 2)."""
    lines = cli(*args, code=2)[1].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0].removeprefix("error: ")


def one_line_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert "Traceback" not in r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and len(detail.splitlines()) == 1, r.text
    return detail


def test_laws_and_published_predictions(client) -> None:
    laws = {entry["name"]: entry for entry in client.get("/api/laws").json()}
    assert laws["kumar2024"]["kind"] == "published" and laws["kumar2024"]["params"]["E"] == pytest.approx(
        2.7648
    )
    assert laws["chinchilla"]["kind"] == "family" and laws["chinchilla"]["inputs"] == ["N", "D"]
    assert {p["name"] for p in client.get("/api/profiles").json()} >= {"bits", "h100"}
    points = {
        "N": [1e8, 1e9, 1e10],
        "D": [2e9, 2e10, 2e11],
        "precision": "w4a8kv8",
        "ptq": [None, "4", "int8"],
    }
    r = client.post("/api/predict", json={"law": "kumar2024", "points": points})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["n_points"] == 3 and out["interval"] == "none" and out["points"]["lower"] == [None] * 3
    expected = fits.predict("kumar2024", {**points, "precision": ["w4a8kv8"] * 3}).table["prediction"]
    assert out["points"]["prediction"] == pytest.approx(expected.to_numpy(), rel=1e-12)
    assert out["points"]["P_post"][1:] == [4.0, 8.0]
    assert any("above the fitted range" in w for w in out["warnings"])
    rec = client.post("/api/recommend", json={"flops": 1e21, "top": 3}).json()
    assert rec["best"] == fits.recommend(1e21).best.to_dict() and len(rec["options"]) == 3
    plan = client.post("/api/recommend/knowledge", json={"knowledge_bits": 1.4e10, "exposures": 1000}).json()
    assert plan["params"] == pytest.approx(7e9, rel=1e-9)


def test_writes_need_the_token(client, server) -> None:
    csv = synthetic_runs().to_csv(index=False).encode()
    assert "bearer token" in one_line_error(client.post("/api/runs", files={"file": ("r.csv", csv)}), 401)
    bad = {"Authorization": "Bearer wrong-token-000"}
    assert (
        one_line_error(client.post("/api/runs", files={"file": ("r.csv", csv)}, headers=bad), 401)
        == "invalid token"
    )
    assert one_line_error(client.delete("/api/fits/abc", headers=bad), 401) == "invalid token"
    assert client.get("/api/fits").status_code == 200  # reads stay open


def test_upload_fit_job_then_use_the_stored_fit(client, server, tmp_path) -> None:
    df = synthetic_runs(seed=1)
    runs = upload(client, server, df, "sweep.csv")
    assert runs["n_rows"] == 25 and runs["columns"] == ["params", "tokens", "loss"]
    assert upload(client, server, df, "sweep.csv")["id"] == runs["id"]  # same file: stored once
    body = {
        "runs_id": runs["id"],
        "law": "chinchilla",
        "map": {"N": "params", "D": "tokens"},
        "bootstrap": 40,
    }
    body.update({"name": "grid fit", "tags": ["test", "grid"]})
    r = client.post("/api/jobs", json=body, headers=server.headers)
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "done" and job["attempts"] == 1, job
    fit_id = job["fit_id"]
    info = client.get(f"/api/fits/{fit_id}").json()
    assert info["name"] == "grid fit" and info["tags"] == ["test", "grid"] and info["n_boot"] == 40
    assert info["nobs"] == 25 and info["source"] == "job" and info["job_id"] == job["id"]
    assert {p["name"] for p in info["params"]} == {"A", "B", "E", "alpha", "beta"}
    assert "<table>" in info["summary_html"] and "scalefit fit: chinchilla" in info["summary_text"]
    assert [f["id"] for f in client.get("/api/fits", params={"tag": "grid"}).json()] == [fit_id]
    # the stored parquet copy of the upload is the table itself
    path = server.store / "runs" / f"{runs['id']}.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)
    with sqlite3.connect(server.store / "registry.sqlite") as db:
        assert db.execute("select count(*) from fits where job_id = ?", (job["id"],)).fetchone() == (1,)

    # fit.json download = what `scalefit predict --fit` reads; the API's prediction is the CLI's
    fit_json = tmp_path / "fit.json"
    fit_json.write_text(client.get(f"/api/fits/{fit_id}/fit.json").text)
    point = {"N": [3e7], "D": [3e8]}
    api = client.post("/api/predict", json={"fit": fit_id, "points": point}).json()
    line = json.loads(cli("predict", "--fit", str(fit_json), "--n", "3e7", "--tokens", "3e8", "--json")[0])
    assert api["points"]["prediction"][0] == pytest.approx(line["prediction"], rel=1e-12)
    assert api["points"]["lower"][0] == pytest.approx(line["lower"], rel=1e-9)
    assert api["points"]["upper"][0] == pytest.approx(line["upper"], rel=1e-9)
    assert api["interval"] == line["interval"]
    assert api["n_boot"] == 40 and api["points"]["lower"][0] < api["points"]["prediction"][0]
    assert any("extrapolating" in w for w in api["warnings"])

    rec = client.post("/api/recommend", json={"fit": fit_id, "flops": 1e16}).json()
    assert rec["bootstrap_draws"] > 0 and rec["best"]["precision"] == "bf16"
    cmp = client.get("/api/compare", params={"a": fit_id, "b": "chinchilla-epoch2024"}).json()
    assert {row["name"] for row in cmp["params"]} == {"A", "B", "E", "alpha", "beta"}
    plot = client.get(f"/api/fits/{fit_id}/plot").json()
    names = [t.get("name", "") for t in plot["data"]]
    assert sum(n.startswith("runs ") for n in names) == 5 and sum(n.startswith("fit ") for n in names) == 5
    assert plot["layout"]["xaxis"]["title"]["text"] == "D"

    assert one_line_error(client.delete(f"/api/fits/{fit_id}"), 401)
    assert client.delete(f"/api/fits/{fit_id}", headers=server.headers).json()["id"] == fit_id
    assert one_line_error(client.get(f"/api/fits/{fit_id}"), 404) == f"unknown fit {fit_id!r}"
    assert one_line_error(client.post("/api/predict", json={"fit": fit_id, "points": point}), 404)


def test_fit_json_upload_and_idempotent_jobs(client, server, tmp_path) -> None:
    df = synthetic_runs(seed=2).rename(columns={"params": "N", "tokens": "D"})
    res = fits.fit(df, "chinchilla", n_boot=20, seed=0, holdout=None)
    path = tmp_path / "fit.json"
    res.to_json(path)
    r = client.post(
        "/api/fits",
        files={"file": ("fit.json", path.read_bytes())},
        data={"tags": "a, b"},
        headers=server.headers,
    )
    assert r.status_code == 201, r.text
    row = r.json()
    assert row["law"] == "chinchilla" and row["tags"] == ["a", "b"] and row["data_hash"] == res.data["hash"]
    out = client.post("/api/predict", json={"fit": row["id"], "points": {"N": [1e6, 2e6], "D": 1e7}}).json()
    expected = fits.predict(res, {"N": [1e6, 2e6], "D": [1e7, 1e7]}).table
    assert out["points"]["prediction"] == pytest.approx(expected["prediction"].to_numpy(), rel=1e-12)
    assert out["points"]["upper"] == pytest.approx(expected["upper"].to_numpy(), rel=1e-9)

    runs = upload(client, server, df)
    body = {"runs_id": runs["id"], "bootstrap": 0, "holdout": 0}
    key = {"Idempotency-Key": "resubmitted-once", **server.headers}
    first = client.post("/api/jobs", json=body, headers=key)
    again = client.post("/api/jobs", json=body, headers=key)
    assert (first.status_code, again.status_code) == (202, 200) and first.json()["id"] == again.json()["id"]
    assert wait_job(client, first.json()["id"])["status"] == "done"


def test_backtest_job(client, server) -> None:
    runs = upload(client, server, synthetic_runs(seed=3).rename(columns={"params": "N", "tokens": "D"}))
    body = {"kind": "backtest", "runs_id": runs["id"], "bootstrap": 0, "cuts": [0.6, 0.8]}
    job = wait_job(client, client.post("/api/jobs", json=body, headers=server.headers).json()["id"])
    assert job["status"] == "done" and job["fit_id"] is None, job
    report = job["result"]["backtest"]
    assert report["law"] == "auto" and [c["cut"] for c in report["cuts"]] == [0.6, 0.8]  # the default
    assert all(c["law"] in fits.forms.AUTO_CANDIDATES for c in report["cuts"])
    assert report["overall"]["rows"] > 0 and report["overall"]["median_rel_error"] < 0.1


def test_parquet_upload_with_the_clis_mapping_fits_what_the_cli_fits(client, server, tmp_path) -> None:
    df = synthetic_runs(seed=6)
    df = pd.DataFrame({"Model Size": df["params"], "Training FLOP": 6 * df["params"] * df["tokens"],
                       "loss": df["loss"]})  # fmt: skip
    path = tmp_path / "epoch-style.parquet"
    df.to_parquet(path, index=False)
    r = client.post("/api/runs", files={"file": (path.name, path.read_bytes())}, headers=server.headers)
    assert r.status_code == 201, r.text
    runs = r.json()
    assert runs["columns"] == ["Model Size", "Training FLOP", "loss"] and runs["n_rows"] == 25
    body = {
        "runs_id": runs["id"],
        "map": {"N": "Model Size", "C": "Training FLOP"},
        "derive_d": True,
        "where": "N > 1e5",
        "bootstrap": 0,
        "holdout": 0,
    }
    job = wait_job(client, client.post("/api/jobs", json=body, headers=server.headers).json()["id"])
    assert job["status"] == "done", job
    api_fit = client.get(f"/api/fits/{job['fit_id']}/fit.json").json()
    out = tmp_path / "cli-fit.json"
    cli("fit", str(path), "--map", "N=Model Size", "--map", "C=Training FLOP", "--derive-d",
        "--where", "N > 1e5", "--bootstrap", "0", "--holdout", "0", "--out", str(out))  # fmt: skip
    cli_fit = json.loads(out.read_text())
    assert api_fit["options"]["law_selection"] == cli_fit["options"]["law_selection"]  # both default to auto
    fitted = cli_fit["metrics"]["selection"]["rows_fitted"]
    assert api_fit["data"]["n_rows"] == cli_fit["data"]["n_rows"] == fitted
    assert api_fit["data"]["hash"] == cli_fit["data"]["hash"]
    for name, value in cli_fit["params"].items():
        assert api_fit["params"][name] == pytest.approx(value, rel=1e-9), name


def test_recommend_takes_the_clis_options(client) -> None:
    body = {
        "flops": 1e21,
        "profile": "h100",
        "precision": "bf16,int8,w4a8kv8",
        "max_params": 1e9,
        "serve_precision": "4",
        "top": 1000,
    }
    api = client.post("/api/recommend", json=body).json()
    flags = [
        "--flops",
        "1e21",
        "--profile",
        "h100",
        "--precision",
        "bf16,int8,w4a8kv8",
        "--max-params",
        "1e9",
    ]
    line = json.loads(cli("recommend", *flags, "--serve-precision", "4", "--json")[0])
    for key in ("best", "options", "constraints", "serve_bits", "objective", "profile", "warnings"):
        assert api[key] == line[key], key
    assert api["n_options"] == len(line["options"]) == 3 and api["best"]["bound"] == "max N"
    assert one_line_error(client.post("/api/recommend", json={"flops": 1e21, "memory_gb": 1e-4}), 400) == (
        cli_error("recommend", "--flops", "1e21", "--memory-gb", "0.0001")
    )
    contradictory = client.post("/api/recommend", json={"flops": 1e21, "params": 1e9, "max_params": 1e8})
    line = cli_error("recommend", "--flops", "1e21", "--params", "1e9", "--max-params", "1e8")
    assert one_line_error(contradictory, 400) == line.replace("--max-params", "max_params").replace(
        "--params", "params"
    )  # the API names its fields where the CLI names its flags


def test_bad_input_is_a_4xx_with_the_clis_line(client, server, tmp_path) -> None:
    assert one_line_error(client.post("/api/recommend", json={"flops": 1e40}), 400) == cli_error(
        "recommend", "--flops", "1e40"
    )
    df = synthetic_runs(seed=4)
    csv = tmp_path / "runs.csv"
    df.to_csv(csv, index=False)
    runs = upload(client, server, df, "runs.csv")
    missing = client.post("/api/jobs", json={"runs_id": runs["id"]}, headers=server.headers)
    assert one_line_error(missing, 400) == cli_error("fit", str(csv))
    where = {"runs_id": runs["id"], "map": {"N": "params", "D": "tokens"}, "where": "N > 1e99"}
    message = one_line_error(client.post("/api/jobs", json=where, headers=server.headers), 400)
    line = cli_error("fit", str(csv), "--map", "N=params", "--map", "D=tokens", "--where", "N > 1e99")
    assert line == message.replace("where", "--where", 1)  # the API names its field where the CLI its flag
    bad_fix = {**where, "where": None, "fix": {"Q": 1.0}, "law": "chinchilla"}
    assert "has no parameter 'Q'" in one_line_error(
        client.post("/api/jobs", json=bad_fix, headers=server.headers), 400
    )
    auto_fix = {**bad_fix, "law": "auto"}  # the default: --fix names one law's parameters
    message = one_line_error(client.post("/api/jobs", json=auto_fix, headers=server.headers), 400)
    line = cli_error("fit", str(csv), "--map", "N=params", "--map", "D=tokens", "--fix", "Q=1")
    assert line == message.replace("fix", "--fix", 1)  # the API's field fix, the CLI's flag --fix
    assert one_line_error(client.post("/api/jobs", json={"runs_id": "nope"}, headers=server.headers), 404)

    pts = {"N": [-1.0], "D": [1e9]}
    assert one_line_error(client.post("/api/predict", json={"law": "kumar2024", "points": pts}), 400) == (
        "N must be positive and finite at every point"
    )
    assert "unknown published law '/etc/passwd'" in one_line_error(
        client.post("/api/predict", json={"law": "/etc/passwd", "points": {"N": [1.0], "D": [1.0]}}), 400
    )
    assert "columns of different lengths" in one_line_error(
        client.post("/api/predict", json={"law": "kumar2024", "points": {"N": [1, 2], "D": [1, 2, 3]}}), 422
    )
    assert one_line_error(
        client.post("/api/predict", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    nan_body = b'{"law": "kumar2024", "points": {"N": [NaN], "D": [1e9]}}'  # not JSON: NaN is no number
    assert one_line_error(
        client.post("/api/predict", content=nan_body, headers={"content-type": "application/json"}), 422
    ).startswith("malformed JSON body")
    assert (
        one_line_error(client.post("/api/predict", json={"law": "kumar2024"}), 422)
        == "points: Field required"
    )
    assert one_line_error(client.post("/api/predict", json={"fit": "a", "law": "b", "points": pts}), 400)
    many = {"N": [1e9] * 100_001, "D": 2e10}
    assert "too many points" in one_line_error(
        client.post("/api/predict", json={"law": "kumar2024", "points": many}), 413
    )
    huge = b"x" * (17 * 2**20)
    assert "request body too large" in one_line_error(
        client.post("/api/predict", content=huge, headers={"content-type": "application/json"}), 413
    )

    def up(name: str, data: bytes, url: str = "/api/runs") -> httpx.Response:
        return client.post(url, files={"file": (name, data)}, headers=server.headers)

    assert one_line_error(up("notes.txt", b"hello"), 400) == cli_error(
        "fit", str(_write(tmp_path / "notes.txt", b"hello"))
    )
    assert one_line_error(up("broken.parquet", b"PAR1 not really"), 400).startswith(
        "cannot read broken.parquet as parquet"
    )
    assert one_line_error(up("empty.csv", b""), 400) == cli_error(
        "fit", str(_write(tmp_path / "empty.csv", b""))
    )
    dup = b"N,N,loss\n1,2,3\n"
    assert one_line_error(up("dup.csv", dup), 400) == cli_error("fit", str(_write(tmp_path / "dup.csv", dup)))
    assert (
        one_line_error(up("fit.json", b"[1, 2]", "/api/fits"), 400)
        == "not a scalefit fit.json (no law/params)"
    )
    assert one_line_error(up("fit.json", b"{", "/api/fits"), 400).startswith("fit.json is not valid JSON")
    assert one_line_error(client.get("/api/nope"), 404) == "Not Found"


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_refuses_writes_on_a_public_address_without_token(tmp_path) -> None:
    line = cli_error("serve", "--host", "0.0.0.0", "--store", str(tmp_path / "s"))
    assert line.startswith("refusing to accept writes on 0.0.0.0 without a token")
