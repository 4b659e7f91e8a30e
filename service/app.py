"""The FastAPI app of `scalefit serve`: registry, predict, recommend, jobs and the web page.

`create_app(ServiceConfig(...))` builds it; `app_from_env()` builds it from `SCALEFIT_SERVICE_CONFIG`
(how uvicorn's worker processes get it). Errors: a `UserError` from the library is a 400 (404 for an
unknown fit, job or runs table) whose body is `{"detail": "<the line the CLI prints after error: >"}`;
malformed bodies are a 422 with one line naming the field; bodies over the limits a 413. Writes (uploads,
jobs, deletes) need `Authorization: Bearer <token>` when the server has a token, and are refused on a
read-only server. docs/service.md describes the endpoints.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from scaling.errors import UserError
from scaling.version import __version__
from service import adapter
from service.jobs import JobRunner, selected_rows
from service.models import (
    CompareOut,
    ErrorOut,
    FitDetail,
    FitInfo,
    HealthOut,
    JobOut,
    JobRequest,
    KnowledgeOut,
    KnowledgeRequest,
    LawOut,
    PlotOut,
    PredictOut,
    PredictRequest,
    ProfileOut,
    RecommendOut,
    RecommendRequest,
    RunsInfo,
)
from service.registry import Registry

__all__ = ["ApiError", "ServiceConfig", "app_from_env", "create_app"]

log = logging.getLogger("scalefit.service")

CONFIG_ENV = "SCALEFIT_SERVICE_CONFIG"

API_NAMES = {
    "n_params": "params",
    "serve_bits": "serve_precision",
    "precisions": "precision",
    "n_boot": "bootstrap",
    "fixed": "fix",
    "tied": "tie",
    "mapping": "map",
}
"""Library parameter -> the request field that sets it (errors name the field, as the CLI names its flag)."""


@dataclass
class ServiceConfig:
    """What a server serves and how: the store, the database, who may write, and the request limits."""

    store: str = "scalefit-store"
    db_url: str | None = None
    token: str | None = None
    read_only: bool = False
    max_upload_mb: float = 64.0
    max_body_mb: float = 16.0
    max_points: int = 100_000
    run_jobs: bool = True
    fit_cache: int = 32

    @property
    def writes(self) -> str:
        return "disabled" if self.read_only else ("token" if self.token else "open")

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServiceConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise RuntimeError(f"{CONFIG_ENV} is not set (start the service with `scalefit serve`)")
        return cls(**json.loads(raw))


class ApiError(UserError):
    """A `UserError` with its HTTP status (404 unknown resource, 401/403 writes, 413 too large)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _one_line(message: Any) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else "bad request"


def _error(status: int, message: Any) -> JSONResponse:
    return JSONResponse({"detail": _one_line(message)}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    """The first problem of a malformed body as one line: `points.N: Input should be a valid number`."""
    errors = exc.errors()
    if not errors:
        return "malformed request"
    e = errors[0]
    where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header"))
    msg = str(e.get("msg", "invalid value"))
    if e.get("type") == "json_invalid":
        return f"malformed JSON body ({e.get('ctx', {}).get('error', 'invalid JSON')})"
    if e.get("type") == "value_error":
        msg = msg.removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"


# ----------------------------------------------------------------------------------- request size limit


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse bodies over the limit with 413 (declared length or bytes actually sent);
    upload endpoints (multipart) have their own, larger limit."""

    def __init__(self, app: Any, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1")
        limit = self.max_upload if ctype.startswith("multipart/") else self.max_body
        what = "upload" if limit == self.max_upload else "request body"
        message = f"{what} too large: the limit is {limit / 2**20:.3g} MiB"
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await _error(413, message)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return msg

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _error(413, message)(scope, receive, send)


# ----------------------------------------------------------------------------------- fast JSON

INLINE_POINTS = 64
"""Predict requests of at most this many points are computed on the event loop, not in the thread pool."""


class _OrjsonRequest(Request):
    """A request whose JSON body is parsed by orjson (strict JSON: NaN, Infinity and numbers beyond the
    float range are malformed, a 422; several times faster than `json` on a 10,000-point predict)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())  # orjson.JSONDecodeError is a json.JSONDecodeError
        return self._json


class OrjsonRoute(APIRoute):
    """The app's routes: JSON request bodies parsed by orjson (`_OrjsonRequest`)."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return route


def json_response(content: Any, status: int = 200) -> Response:
    """`content` (dicts, lists, numbers, float64 arrays; NaN and infinities become null) as a JSON
    response, serialized by orjson without a second validation pass: for answers the handler built from
    its response model's fields (the model still documents them in the OpenAPI schema)."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json")


# ----------------------------------------------------------------------------------- the app

_bearer = HTTPBearer(auto_error=False, description="The server's token (`scalefit serve --token`).")


class Service:
    """What the routes share: the config, the registry, the job runner and a cache of loaded fits."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.registry = Registry(config.store, config.db_url)
        self.runner = JobRunner(self.registry) if config.run_jobs and not config.read_only else None
        self._fits: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def fit_result(self, fit_id: str) -> Any:
        """The FitResult of a stored fit (cached; a fit is immutable, and a deleted one is a 404)."""
        with self._lock:
            cached = self._fits.get(fit_id)
            if cached is not None:
                self._fits.move_to_end(fit_id)
        if cached is not None:
            if not self.registry.fit_exists(fit_id):
                self._forget(fit_id)
                raise ApiError(f"unknown fit {fit_id!r}", 404)
            return cached
        row = self.registry.get_fit(fit_id)
        if row is None:
            raise ApiError(f"unknown fit {fit_id!r}", 404)
        result = adapter.fit_from_dict(row["content"])
        with self._lock:
            self._fits[fit_id] = result
            while len(self._fits) > self.config.fit_cache:
                self._fits.popitem(last=False)
        return result

    def _forget(self, fit_id: str) -> None:
        with self._lock:
            self._fits.pop(fit_id, None)

    def source(self, fit: str | None, law: str | None, default: str | None = None) -> tuple[Any, str | None]:
        """(FitResult or None, published law name or None) for a request naming a fit id or a law."""
        if fit is not None and law is not None:
            raise ApiError("give exactly one of fit (a fit id) or law (a published set), not both")
        if fit is not None:
            return self.fit_result(fit), None
        name = law or default
        if name is None:
            raise ApiError("give exactly one of fit (a fit id) or law (a published set)")
        adapter.check_published(name)
        return None, name


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The service's FastAPI app (module docstring)."""
    config = config or ServiceConfig()
    svc = Service(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if svc.runner is not None:
            svc.runner.start()
        yield
        if svc.runner is not None:
            svc.runner.stop()
        svc.registry.close()

    app = FastAPIOffline(  # /docs and /redoc with their scripts served by the app, not fetched from a CDN
        title="scalefit",
        version=__version__,
        description=(
            "Scaling-law fits, predictions and recommendations. Reads are open; writes (uploads, jobs, "
            'deletes) need a bearer token when the server has one. Errors: `{"detail": one line}`.'
        ),
        lifespan=lifespan,
        responses={400: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    )
    app.router.route_class = OrjsonRoute
    app.state.service = svc
    app.add_middleware(
        BodyLimit, max_body=int(config.max_body_mb * 2**20), max_upload=int(config.max_upload_mb * 2**20)
    )

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc)

    @app.exception_handler(UserError)
    async def _user_error(_request: Request, exc: UserError) -> JSONResponse:
        return _error(400, exc.for_flags(API_NAMES))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, exc.detail)

    @app.exception_handler(OSError)
    async def _disk(_request: Request, exc: OSError) -> JSONResponse:
        log.error("storage error: %s", exc)
        return _error(507, f"storage error on the server: {exc.strerror or type(exc).__name__}")

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    def writer(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if config.read_only:
            raise ApiError("this server is read-only (started with --read-only)", 403)
        if config.token is None:
            return
        if creds is None:
            raise ApiError("writes need a bearer token: send Authorization: Bearer <token>", 401)
        if not hmac.compare_digest(creds.credentials.encode(), config.token.encode()):
            raise ApiError("invalid token", 401)

    Write = Depends(writer)
    not_found = {404: {"model": ErrorOut}}
    auth = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut}}

    # ------------------------------------------------------------------ laws
    @app.get("/api/health", response_model=HealthOut, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness, the registry's size and the server's limits."""
        return {
            "status": "ok",
            "version": __version__,
            "fits": len(svc.registry.list_fits()),
            "jobs": svc.registry.count_jobs(),
            "writes": config.writes,
            "limits": {
                "max_upload_bytes": int(config.max_upload_mb * 2**20),
                "max_body_bytes": int(config.max_body_mb * 2**20),
                "max_points": config.max_points,
            },
        }

    @app.get("/api/laws", response_model=list[LawOut], tags=["laws"])
    def laws() -> list[dict[str, Any]]:
        """Law families (to fit) and published constant sets (to use at once)."""
        return adapter.laws()

    @app.get("/api/laws/{name}", response_model=LawOut, responses=not_found, tags=["laws"])
    def law(name: str) -> dict[str, Any]:
        known = {entry["name"]: entry for entry in adapter.laws()}
        if name not in known:
            raise ApiError(f"unknown law {name!r}; choose one of {', '.join(known)}", 404)
        return known[name]

    @app.get("/api/profiles", response_model=list[ProfileOut], tags=["laws"])
    def profiles() -> list[dict[str, str]]:
        """Hardware cost profiles for recommend (`scalefit recommend --list-profiles`)."""
        return adapter.profiles()

    # ------------------------------------------------------------------ fits
    @app.get("/api/fits", response_model=list[FitInfo], tags=["fits"])
    def list_fits(
        law: Annotated[str | None, Query(max_length=100)] = None,
        tag: Annotated[str | None, Query(max_length=200)] = None,
    ) -> list[dict[str, Any]]:
        """The registry's fits, newest first (optionally of one law family or with one tag)."""
        return svc.registry.list_fits(law, tag)

    def _info(fit_id: str) -> dict[str, Any]:
        row = svc.registry.get_fit(fit_id, content=False)
        if row is None:
            raise ApiError(f"unknown fit {fit_id!r}", 404)
        return row

    @app.get("/api/fits/{fit_id}", response_model=FitDetail, responses=not_found, tags=["fits"])
    def get_fit(fit_id: str) -> dict[str, Any]:
        """One fit: estimates with SE and intervals, metrics, diagnostics and the summary table."""
        info = _info(fit_id)
        detail = adapter.fit_summary(svc.fit_result(fit_id))
        return {**detail, **info}

    @app.get("/api/fits/{fit_id}/fit.json", responses=not_found, tags=["fits"])
    def get_fit_json(fit_id: str) -> JSONResponse:
        """The fit.json file itself (as `scalefit fit` writes it; use it with `scalefit predict --fit`)."""
        row = svc.registry.get_fit(fit_id)
        if row is None:
            raise ApiError(f"unknown fit {fit_id!r}", 404)
        return JSONResponse(
            row["content"], headers={"Content-Disposition": f'attachment; filename="{fit_id}.json"'}
        )

    @app.get("/api/fits/{fit_id}/plot", response_model=PlotOut, responses=not_found, tags=["fits"])
    def plot_fit(fit_id: str) -> dict[str, Any]:
        """A plotly figure of the fitted rows with the law's curves and intervals."""
        from service.plot import fit_figure

        info = _info(fit_id)
        result = svc.fit_result(fit_id)
        rows = adapter.fit_rows(result)
        if rows is None:
            raise ApiError(f"fit {fit_id!r} holds no data rows to plot (fitted with keep_data=False)", 404)
        fig = fit_figure(
            rows, f"{info['name']} ({info['law']})", lambda pts: adapter.predict(result, pts, None)
        )
        return {"data": list(fig.get("data", [])), "layout": dict(fig.get("layout", {}))}

    @app.delete("/api/fits/{fit_id}", response_model=FitInfo, responses={**not_found, **auth}, tags=["fits"])
    def delete_fit(fit_id: str, _w: None = Write) -> dict[str, Any]:
        """Remove a fit from the registry."""
        info = _info(fit_id)
        if not svc.registry.delete_fit(fit_id):
            raise ApiError(f"unknown fit {fit_id!r}", 404)
        svc._forget(fit_id)
        return info

    @app.post("/api/fits", response_model=FitInfo, status_code=201, responses=auth, tags=["fits"])
    async def upload_fit(
        file: Annotated[UploadFile, File(description="A fit.json written by `scalefit fit`.")],
        name: Annotated[str | None, Form(max_length=200)] = None,
        tags: Annotated[str, Form(max_length=2000, description="Comma-separated tags.")] = "",
        _w: None = Write,
    ) -> dict[str, Any]:
        """Add an existing fit.json to the registry."""
        raw = await file.read()
        try:
            content = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(f"{file.filename or 'upload'} is not valid JSON ({type(exc).__name__})") from None
        result = adapter.fit_from_dict(content)
        meta = adapter.fit_meta(result)
        label = name or f"{meta['law']} fit ({file.filename or 'fit.json'})"
        return svc.registry.add_fit(content, name=label, tags=_tags(tags), **meta)

    @app.get("/api/compare", response_model=CompareOut, responses=not_found, tags=["fits"])
    def compare(
        a: Annotated[str, Query(max_length=100, description="A fit id or a published set.")],
        b: Annotated[str, Query(max_length=100, description="A fit id or a published set.")],
    ) -> dict[str, Any]:
        """Two fits' (or a fit's and a published set's) parameters side by side."""
        return _compare(svc, a, b)

    # ------------------------------------------------------------------ runs and jobs
    @app.post("/api/runs", response_model=RunsInfo, status_code=201, responses=auth, tags=["jobs"])
    async def upload_runs(
        file: Annotated[UploadFile, File(description="A runs table: results.parquet, or a CSV/TSV/parquet.")],
        _w: None = Write,
    ) -> JSONResponse:
        """Store a runs table (as parquet); the same file uploaded again returns the stored one (200)."""
        filename = Path(file.filename or "runs.csv").name
        suffix = Path(filename).suffix.lower()
        digest = hashlib.sha256()
        tmp_dir = svc.registry.store / "tmp"
        tmp_dir.mkdir(exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(suffix=suffix, dir=tmp_dir)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := await file.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            df = adapter.read_runs(tmp_name)
        except UserError as exc:  # the CLI names the file; the message names the upload's name
            raise ApiError(str(exc).replace(Path(tmp_name).name, filename)) from None
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        if len(df) == 0:
            raise ApiError(f"{filename} has no rows")
        row, new = svc.registry.add_runs(df, filename=filename, sha256=digest.hexdigest(), size_bytes=size)
        return JSONResponse(RunsInfo(**row).model_dump(), status_code=201 if new else 200)

    @app.get("/api/runs", response_model=list[RunsInfo], tags=["jobs"])
    def list_runs() -> list[dict[str, Any]]:
        return svc.registry.list_runs()

    @app.get("/api/runs/{runs_id}", response_model=RunsInfo, responses=not_found, tags=["jobs"])
    def get_runs(runs_id: str) -> dict[str, Any]:
        row = svc.registry.get_runs(runs_id)
        if row is None:
            raise ApiError(f"unknown runs table {runs_id!r}", 404)
        return row

    @app.post(
        "/api/jobs", response_model=JobOut, status_code=202, responses={**not_found, **auth}, tags=["jobs"]
    )
    def submit_job(
        body: JobRequest,
        idempotency_key: Annotated[
            str | None,
            Header(max_length=200, description="Resubmitting with the same key returns the first job."),
        ] = None,
        _w: None = Write,
    ) -> JSONResponse:
        """Queue a fit (or backtest) of an uploaded runs table; returns the job at once (202). Columns, the
        row query and the law are checked now: a bad one is a 4xx, not a failed job."""
        if svc.registry.get_runs(body.runs_id) is None:
            raise ApiError(f"unknown runs table {body.runs_id!r}", 404)
        request = {
            "runs_id": body.runs_id,
            "law": body.law,
            "map": body.map,
            "derive_d": body.derive_d,
            "where": body.where,
            "ptq_method": body.ptq_method,
            "n_boot": body.bootstrap,
            "holdout": body.holdout,
            "seed": body.seed,
            "huber_delta": body.huber_delta,
            "fixed": body.fix,
            "tied": body.tie,
            "alpha": body.alpha,
            "cuts": body.cuts,
            "by": body.by,
            "interval": body.interval,
            "name": body.name,
            "tags": body.tags,
        }
        data, _, _ = selected_rows(svc.registry, request)
        adapter.check_fit_options(data, request)
        job, new = svc.registry.add_job(body.kind, request, idempotency_key)
        if svc.runner is not None:
            svc.runner.wake()
        return JSONResponse(JobOut(**job).model_dump(), status_code=202 if new else 200)

    @app.get("/api/jobs", response_model=list[JobOut], tags=["jobs"])
    def list_jobs(
        status: Annotated[str | None, Query(pattern="^(queued|running|done|failed)$")] = None,
    ) -> list[dict[str, Any]]:
        return svc.registry.list_jobs(status)

    @app.get("/api/jobs/{job_id}", response_model=JobOut, responses=not_found, tags=["jobs"])
    def get_job(job_id: str) -> dict[str, Any]:
        """A job's status and progress; `fit_id` once a fit job is done."""
        job = svc.registry.get_job(job_id)
        if job is None:
            raise ApiError(f"unknown job {job_id!r}", 404)
        return job

    # ------------------------------------------------------------------ answers
    @app.post("/api/predict", response_model=PredictOut, responses=not_found, tags=["predict"])
    async def predict(body: PredictRequest) -> Response:
        """Predictions at many points with intervals (fits with bootstrap draws) and warnings (the fit's
        diagnostics, ignored inputs, extrapolation beyond the fitted ranges)."""
        n = max((len(v) for v in body.points.values() if isinstance(v, list)), default=1)
        if n > config.max_points:
            raise ApiError(
                f"too many points: {n} (this server predicts at most {config.max_points} per request)", 413
            )

        def answer() -> dict[str, Any]:
            result, law_name = svc.source(body.fit, body.law)
            return adapter.predict(
                result if result is not None else law_name, body.points, body.alpha, body.interval
            )

        # a few points take well under a millisecond: answered on the event loop (a hop to the thread
        # pool would cost more than the prediction); large batches go to the pool
        out = answer() if n <= INLINE_POINTS else await run_in_threadpool(answer)
        return json_response(out)

    @app.post("/api/recommend", response_model=RecommendOut, responses=not_found, tags=["recommend"])
    def recommend(body: RecommendRequest) -> dict[str, Any]:
        """`scalefit recommend --flops`: N, D and precision for a budget, with a fit or a published law."""
        result, law_name = svc.source(body.fit, body.law, default="kumar2024")
        precisions = body.precision.split(",") if isinstance(body.precision, str) else body.precision
        options = {
            "profile": body.profile,
            "precisions": [p.strip() for p in precisions if p.strip()] if precisions is not None else None,
            "per_kind": body.per_kind,
            "serve_bits": body.serve_precision,
            "max_params": body.max_params,
            "max_tokens": body.max_tokens,
            "memory_gb": body.memory_gb,
            "n_params": body.params,
        }
        out = adapter.recommend(body.flops, result, law_name if result is None else None, options)
        out["n_options"] = len(out["options"])
        out["options"] = out["options"][: body.top]
        return out

    @app.post(
        "/api/recommend/knowledge", response_model=KnowledgeOut, responses=not_found, tags=["recommend"]
    )
    def recommend_knowledge(body: KnowledgeRequest) -> dict[str, Any]:
        """`scalefit recommend --knowledge-bits`: parameters (and tokens) to store that much knowledge."""
        result, law_name = svc.source(body.fit, body.law, default="capacity-allenzhu2024")
        options = {
            "corpus_tokens": body.corpus_tokens,
            "ptq": body.ptq,
            "junk": body.junk,
            "domain_token": 1.0 if body.domain_token else None,
            "mlp": body.mlp,
            "moe": 1.0 if body.moe else None,
        }
        return adapter.knowledge(body.knowledge_bits, body.exposures, result, law_name, options)

    from service.web import mount_web

    mount_web(app)
    return app


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _compare(svc: Service, a: str, b: str) -> dict[str, Any]:
    """Side-by-side parameters of two sources (fit ids or published sets)."""

    def load(ref: str) -> tuple[str, dict[str, dict[str, float | None]]]:
        if adapter.is_published(ref):
            info = adapter.law_info(ref)
            return info["family"], {
                k: {"estimate": v, "lower": None, "upper": None} for k, v in info["params"].items()
            }
        summary = adapter.fit_summary(svc.fit_result(ref))
        return summary["law"], {p["name"]: p for p in summary["params"]}

    law_a, pa = load(a)
    law_b, pb = load(b)
    rows = []
    for name in [n for n in pa if n in pb]:
        x, y = pa[name], pb[name]
        ea, eb = _num(x["estimate"]), _num(y["estimate"])
        diff = eb - ea if ea is not None and eb is not None else None
        rel = diff / abs(ea) if diff is not None and ea else None
        bounds = [_num(x["lower"]), _num(x["upper"]), _num(y["lower"]), _num(y["upper"])]
        overlap = None if None in bounds else bool(bounds[0] <= bounds[3] and bounds[2] <= bounds[1])
        rows.append(
            {
                "name": name,
                "a": ea,
                "a_lower": bounds[0],
                "a_upper": bounds[1],
                "b": eb,
                "b_lower": bounds[2],
                "b_upper": bounds[3],
                "difference": diff,
                "relative_difference": rel,
                "intervals_overlap": overlap,
            }
        )
    return {
        "a": a,
        "b": b,
        "law_a": law_a,
        "law_b": law_b,
        "params": rows,
        "only_a": [n for n in pa if n not in pb],
        "only_b": [n for n in pb if n not in pa],
    }


def app_from_env() -> FastAPI:
    """The app for uvicorn's worker processes: the config comes from `SCALEFIT_SERVICE_CONFIG`."""
    return create_app(ServiceConfig.from_env())
