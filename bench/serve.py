"""Benchmark: `scalefit serve` under a bounded load on loopback (httpx), with 1 and 2 uvicorn workers.

The stored fit is what `scalefit fit` makes of the public Chinchilla points (Epoch's 240, law chinchilla,
1,000 bootstrap draws, calibrated intervals), uploaded as fit.json into a fresh store (the synthetic grid
of tests/test_service_api.py's law when the data is absent). Per worker count, after a warm-up:

- single-point predict, one request at a time (keep-alive): latency p50/p99;
- single-point predict, `--concurrency` requests in flight: requests/s and latency, once through httpx's
  asyncio client and once through a minimal asyncio HTTP/1.1 client (a fraction of httpx's CPU per
  request, so more of the 2 shared cores are left to the server);
- 10,000-point batch predict with intervals, and the same with `interval: none`, one at a time: latency
  p50/p99 (request and response JSON included);
- recommend (`{"fit": id, "flops": 1e22}`), one at a time: latency p50/p99;
- and, in-process without HTTP, `fits.predict` on the same points (the floor under the service).

The load generator runs on the same machine as the server (its CPU per request is reported), so requests/s
is what 2 cores give server and client together. Goals (issue 13): single-point p99 < 20 ms, >= 1,000
requests/s with 2 workers, 10k batch < 100 ms. Rewrites the "Service (bench/serve.py)" section of
docs/benchmarks.md with the machine, load average, command and date.

    python bench/serve.py [--requests 2000] [--batch-requests 30] [--concurrency 16] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402

HEADING = "## Service (bench/serve.py)"
DATA = ROOT.parent / "shared" / "data" / "chinchilla_epoch_svg_extracted.csv"
TOKEN = "bench-token-0123456789"


def machine() -> str:
    """CPU model and SIMD flags (lscpu), logical CPUs, OS."""
    model, flags = "unknown CPU", set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            model = value.strip()
        elif key.strip() == "Flags":
            flags = set(value.split())
    simd = ", ".join(f for f in ("avx", "avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)
    cpus = f"{os.cpu_count()} logical CPUs; {simd or 'no AVX'}"
    return f"{model} ({platform.machine()}, {cpus}), {platform.system()} {platform.release()}"


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def stored_fit(path: Path) -> str:
    """Write the benchmark's fit.json to `path`; returns a description of it."""
    import fits
    from fits.dataset import read_table

    if DATA.is_file():
        df = read_table(DATA, {"N": "Model Size", "C": "Training FLOP"}, derive_d=True)
        df = df.sort_values("loss").iloc[:-5]  # Epoch's 240 points
        what = "Epoch's 240 Chinchilla points"
    else:
        rng = np.random.default_rng(0)
        N = np.repeat([1e5, 3e5, 1e6, 3e6, 1e7], 5)
        D = np.tile([1e6, 3e6, 1e7, 3e7, 1e8], 5)
        loss = (1.7 + 400 / N**0.34 + 410 / D**0.28) * np.exp(rng.normal(0, 0.01, N.size))
        df = {"N": N, "D": D, "loss": loss}
        what = f"a synthetic 5x5 grid ({DATA} not found)"
    result = fits.fit(df, "chinchilla")  # `scalefit fit --law chinchilla`: 1,000 bootstrap draws, holdout 0.2
    result.to_json(path)
    return f"{what}, chinchilla, {result.n_boot} bootstrap draws"


def batch_points(n: int) -> dict[str, list[float]]:
    """`n` random (N, D) points, log-uniform over N 1e8–1e11 and D 2e9–2e12 (seeded)."""
    rng = np.random.default_rng(0)
    return {
        "N": np.exp(rng.uniform(np.log(1e8), np.log(1e11), n)).tolist(),
        "D": np.exp(rng.uniform(np.log(2e9), np.log(2e12), n)).tolist(),
    }


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def sequential(client, path: str, body: dict, n: int) -> list[float]:
    """Latencies of `n` requests one at a time; the body is encoded once (as a load generator does), so
    the client's JSON encoding of a 10,000-point batch is not counted as the server's latency."""
    times = []
    content = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post(path, content=content, headers=headers)
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
    return times


def concurrent(url: str, path: str, body: dict, n: int, concurrency: int) -> tuple[float, list[float]]:
    """(requests/s, latencies) of `n` requests with `concurrency` in flight on as many connections."""
    import httpx

    content = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}

    async def run() -> tuple[float, list[float]]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        times: list[float] = []
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            left = n

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    t0 = time.perf_counter()
                    r = await client.post(path, content=content, headers=headers)
                    times.append(time.perf_counter() - t0)
                    if r.status_code != 200:
                        raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")

            await asyncio.gather(*(worker() for _ in range(concurrency)))  # connections opened
            left = n
            times.clear()
            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.perf_counter() - t0
        return n / wall, times

    return asyncio.run(run())


def raw_concurrent(url: str, path: str, body: dict, n: int, concurrency: int) -> tuple[float, list[float]]:
    """`concurrent` with a minimal HTTP/1.1 keep-alive client on asyncio streams (a prebuilt request, the
    answer read by Content-Length): it spends a fraction of httpx's CPU per request, so on a shared
    2-core machine more of the cores go to the server."""
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    payload = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload

    async def run() -> tuple[float, list[float]]:
        times: list[float] = []
        left = n

        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{path}: {head[:100]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)

        async def worker(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
            nonlocal left
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                await one(*conn)
                times.append(time.perf_counter() - t0)

        conns = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
        for conn in conns:
            await one(*conn)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        wall = time.perf_counter() - t0
        for _, writer in conns:
            writer.close()
        return n / wall, times

    return asyncio.run(run())


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_workers(store: Path, workers: int, fit_json: Path | None, args: argparse.Namespace) -> dict:
    import httpx

    from service.live import LiveServer

    out: dict = {"workers": workers, "load_before": load()}
    with (
        LiveServer(store, token=TOKEN, workers=workers) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        fits_listed = client.get("/api/fits").json()
        if fits_listed:
            fit_id = fits_listed[0]["id"]
        else:
            assert fit_json is not None
            r = client.post(
                "/api/fits", files={"file": ("fit.json", fit_json.read_bytes())}, headers=server.headers
            )
            r.raise_for_status()
            fit_id = r.json()["id"]
        one = {"fit": fit_id, "points": {"N": [7e10], "D": [1.4e12]}}
        batch = {"fit": fit_id, "points": batch_points(args.batch)}
        rec = {"fit": fit_id, "flops": 1e22}
        # warm-up on fresh connections, so that every worker has loaded the fit and imported what it needs
        for _ in range(4 * workers):
            with httpx.Client(base_url=server.url, timeout=120) as fresh:
                sequential(fresh, "/api/predict", one, 5)
                sequential(fresh, "/api/predict", batch, 1)
                sequential(fresh, "/api/recommend", rec, 1)
        sequential(client, "/api/predict", one, 50)

        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        out["single"] = percentiles(sequential(client, "/api/predict", one, args.requests))
        out["single_rps_seq"] = args.requests / (time.perf_counter() - t0)
        cpu1 = cpu_seconds()
        rps, times = concurrent(server.url, "/api/predict", one, args.requests, args.concurrency)
        out["client_cpu_conc"] = cpu_seconds() - cpu1
        out["client_cpu_seq"] = cpu1 - cpu0
        out["rps"], out["single_loaded"] = rps, percentiles(times)
        cpu2 = cpu_seconds()
        rps, times = raw_concurrent(server.url, "/api/predict", one, args.requests, args.concurrency)
        out["client_cpu_raw"] = cpu_seconds() - cpu2
        out["rps_raw"], out["single_raw"] = rps, percentiles(times)
        r = client.post("/api/predict", json=batch).json()
        out["batch_interval"] = r["interval"]
        out["batch_warnings"] = len(r["warnings"])
        out["batch_bytes"] = len(client.post("/api/predict", json=batch).content)
        out["batch"] = percentiles(sequential(client, "/api/predict", batch, args.batch_requests))
        bare = {**batch, "interval": "none"}
        out["batch_none"] = percentiles(sequential(client, "/api/predict", bare, args.batch_requests))
        out["recommend"] = percentiles(sequential(client, "/api/recommend", rec, args.recommend_requests))
    out["load_after"] = load()
    return out


def library_times(fit_json: Path, args: argparse.Namespace) -> dict[str, float]:
    """Median in-process milliseconds of the library calls behind a predict (no HTTP): what the service
    cannot go below."""
    import fits

    result = fits.FitResult.from_dict(json.loads(fit_json.read_text()))
    one = {"N": [7e10], "D": [1.4e12]}
    batch = batch_points(args.batch)

    def median_ms(fn: Any, n: int) -> float:
        fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e3)

    return {
        "one": median_ms(lambda: fits.predict(result, one), 200),
        "one_none": median_ms(lambda: fits.predict(result, one, interval="none"), 200),
        "batch": median_ms(lambda: fits.predict(result, batch), 3),
        "batch_none": median_ms(lambda: fits.predict(result, batch, interval="none"), 10),
    }


def report(
    results: list[dict], lib: dict[str, float], args: argparse.Namespace, fit_what: str, cmd: str, when: str
) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    def pair(p: tuple[float, float], digits: int = 1) -> str:
        return f"{p[0]:.{digits}f} / {p[1]:.{digits}f}"

    c = args.concurrency
    rows = [
        "| workers | single predict p50 / p99 (ms) | req/s one at a time | req/s, httpx, "
        f"{c} in flight (p50 / p99 ms) | req/s, raw client, {c} in flight (p50 / p99 ms) "
        f"| {args.batch:,}-point batch p50 / p99 (ms) | same, `interval: none` (ms) "
        "| recommend p50 / p99 (ms) | load avg before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['workers']} | {pair(r['single'], 2)} | {r['single_rps_seq']:.0f} "
            f"| {r['rps']:.0f} ({pair(r['single_loaded'])}) | {r['rps_raw']:.0f} ({pair(r['single_raw'])}) "
            f"| {pair(r['batch'])} | {pair(r['batch_none'])} | {pair(r['recommend'])} "
            f"| {r['load_before']} → {r['load_after']} |"
        )
    by = {r["workers"]: r for r in results}
    p99 = max(r["single"][1] for r in results)
    goals = [f"single-point predict p99 < 20 ms: {p99:.2f} ms (worst) — {verdict(p99 < 20)}"]
    if 2 in by:
        rps = max(by[2]["rps"], by[2]["rps_raw"])
        goals.append(f">= 1,000 requests/s with 2 workers: {rps:.0f} (best client) — {verdict(rps >= 1000)}")
    median = max(r["batch"][0] for r in results)
    batch = max(r["batch"][1] for r in results)
    bare = max(r["batch_none"][1] for r in results)
    goals.append(
        f"{args.batch:,}-point batch < 100 ms: with intervals p50 {median:.1f} ms — {verdict(median < 100)}, "
        f"p99 {batch:.1f} ms — {verdict(batch < 100)}; p99 {bare:.1f} ms with `interval: none` — "
        f"{verdict(bare < 100)} (worst of the worker counts)"
    )
    client = "; ".join(
        f"{r['workers']} worker(s): httpx {1e3 * r['client_cpu_conc'] / args.requests:.1f} ms, raw client "
        f"{1e3 * r['client_cpu_raw'] / args.requests:.2f} ms of client CPU per request"
        for r in results
    )
    b = results[0]
    return "\n".join(
        [
            HEADING,
            "",
            f"`{cmd}` — {when}; machine: {machine()}; shared with other jobs (load averages 1/5/15 min "
            "in the table).",
            f"Stored fit: `scalefit fit --law chinchilla` on {fit_what}, uploaded as fit.json into a fresh "
            f"SQLite store; a real `scalefit serve --workers W` on 127.0.0.1, driven from one client process "
            f"on the same 2 cores: {args.requests} single-point predicts one at a time (httpx, keep-alive), "
            f"{args.requests} with {c} in flight through httpx's asyncio client and {args.requests} "
            f"through a minimal asyncio HTTP/1.1 client; {args.batch_requests} batches of {args.batch:,} "
            f"random points (N 1e8–1e11, D 2e9–2e12) with {b['batch_interval']} intervals and "
            f"{b['batch_warnings']} extrapolation warning(s) (response {b['batch_bytes'] / 1e6:.2f} MB), "
            f"the same batch with `interval: none`; {args.recommend_requests} recommends at 1e22 FLOPs. "
            "Times are client-side round trips.",
            "",
            *rows,
            "",
            "Goals: " + "; ".join(goals) + ".",
            "",
            f"Where the time goes: `fits.predict` itself, in-process without HTTP, takes {lib['one']:.2f} ms "
            f"for the single point with its calibrated interval ({lib['one_none']:.2f} ms without an "
            f"interval) and {lib['batch']:.0f} ms for the {args.batch:,}-point batch with intervals "
            f"({lib['batch_none']:.1f} ms without): the server's share on top is HTTP, validation and JSON. "
            f"Client CPU: {client}.",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="single-point requests per phase")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--batch", type=int, default=10_000, help="points in a batch request")
    ap.add_argument("--batch-requests", type=int, default=30)
    ap.add_argument("--recommend-requests", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    defaults = {"requests": 2000, "concurrency": 16, "batch": 10_000, "batch_requests": 30,
                "recommend_requests": 30, "workers": [1, 2]}  # fmt: skip
    cmd = "python bench/serve.py" + "".join(
        f" --{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k in defaults and v != defaults[k]
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tmp = Path(tempfile.mkdtemp(prefix="scalefit-bench-serve-"))
    try:
        fit_json = tmp / "fit.json"
        print(f"fitting the benchmark's fit (load {load()}) ...", flush=True)
        fit_what = stored_fit(fit_json)
        lib = library_times(fit_json, args)
        print(f"library (in-process): {lib}", flush=True)
        results = []
        for w in args.workers:
            print(f"{w} worker(s), load {load()} ...", flush=True)
            results.append(bench_workers(tmp / "store", w, fit_json, args))
            print(results[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(results, lib, args, fit_what, cmd, when)
    print(text)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, text)
        print("wrote docs/benchmarks.md", flush=True)


if __name__ == "__main__":
    main()
