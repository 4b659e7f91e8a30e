"""The pydantic models of every request and response of the service (they make the OpenAPI schema).

Request fields are named after the CLI's flags (`bootstrap`, `map`, `derive_d`, `serve_precision`,
`params`, ...) so that a command line translates field for field, and an error names the field where the
CLI names its flag.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CompareOut",
    "ErrorOut",
    "FitDetail",
    "FitInfo",
    "HealthOut",
    "JobOut",
    "JobRequest",
    "KnowledgeOut",
    "KnowledgeRequest",
    "LawOut",
    "PlotOut",
    "PredictOut",
    "PredictRequest",
    "ProfileOut",
    "RecommendOut",
    "RecommendRequest",
    "RunsInfo",
]

Number = float | None
Cell = float | str | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """Every error: the one line the CLI prints after `error: `."""

    detail: str = Field(examples=["compute budget 1e+40 FLOPs is outside the sane range [1e+06, 1e+35]"])


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    fits: int
    jobs: dict[str, int]
    writes: Literal["token", "open", "disabled"]
    limits: dict[str, int]


class LawOut(BaseModel):
    """A law family (fit it to your runs) or a published constant set (use it at once)."""

    name: str
    kind: Literal["family", "published"]
    family: str
    description: str
    equation: str
    citation: str
    inputs: list[str]
    alternatives: list[list[str]]
    optional_inputs: list[str]
    target: str
    unit: str
    precision_inputs: bool = Field(description="The law's prediction depends on the training precision.")
    ptq_input: bool = Field(description="The law has a post-training quantization term (P_post).")
    param_names: list[str]
    params: dict[str, Number] | None = Field(None, description="Published constants (published sets only).")
    ranges: dict[str, list[float]] = Field(description="Input ranges the constants were fitted on.")


class ProfileOut(BaseModel):
    name: str
    summary: str
    assumptions: str


class RunsInfo(BaseModel):
    """An uploaded runs table, stored as parquet in the store."""

    id: str
    filename: str
    sha256: str
    n_rows: int
    columns: list[str]
    size_bytes: int
    created: str


class FitInfo(BaseModel):
    """A fit in the registry."""

    id: str
    name: str
    law: str
    tags: list[str]
    created: str
    data_hash: str
    n_rows: int
    n_boot: int
    source: Literal["upload", "job"]
    job_id: str | None
    runs_id: str | None


class ParamOut(BaseModel):
    name: str
    estimate: Number
    std_err: Number
    lower: Number
    upper: Number
    free: bool


class FitDetail(FitInfo):
    """One fit: its estimates, metrics, diagnostics and summary (text and HTML)."""

    equation: str
    citation: str
    inputs: list[str]
    alternatives: list[list[str]]
    optional_inputs: list[str]
    target: str
    unit: str
    precision_inputs: bool
    ptq_input: bool
    param_names: list[str]
    alpha: float
    nobs: int
    params: list[ParamOut]
    in_sample: dict[str, Any] | None
    holdout: dict[str, Any] | None
    diagnostics: list[dict[str, Any]]
    ranges: dict[str, list[float]]
    summary_text: str
    summary_html: str
    has_rows: bool


class PlotOut(BaseModel):
    """A plotly figure (`Plotly.newPlot(div, data, layout)`): the fitted rows, the law's curves and their
    intervals."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]


class CompareRow(BaseModel):
    name: str
    a: Number
    a_lower: Number
    a_upper: Number
    b: Number
    b_lower: Number
    b_upper: Number
    difference: Number = Field(description="b − a")
    relative_difference: Number = Field(description="(b − a) / |a|")
    intervals_overlap: bool | None = Field(
        description="Whether the two intervals overlap (None: no intervals)."
    )


class CompareOut(BaseModel):
    a: str
    b: str
    law_a: str
    law_b: str
    params: list[CompareRow]
    only_a: list[str]
    only_b: list[str]


class JobRequest(_Strict):
    """Fit (or backtest) a law to an uploaded runs table in the background: `scalefit fit`'s options."""

    kind: Literal["fit", "backtest"] = "fit"
    runs_id: str = Field(description="The id `POST /api/runs` returned.", max_length=64)
    law: str = Field("auto", max_length=100, description="A law name, or auto (as `scalefit fit`).")
    map: dict[str, str] = Field(
        default_factory=dict, description='Take a column from the file: {"N": "Model Size"}.'
    )
    derive_d: bool = Field(False, description="Derive tokens D = C / (6 N) from compute C.")
    where: str | None = Field(
        None, max_length=2000, description='Keep rows a pandas query selects: "N > 1e8".'
    )
    ptq_method: str | None = Field(None, max_length=50)
    bootstrap: int = Field(1000, ge=0, le=20000, description="Bootstrap resamples (0: none).")
    holdout: float = Field(0.2, ge=0.0, lt=1.0, description="Largest-compute fraction held out (0: skip).")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    huber_delta: float = Field(1e-3, gt=0.0, description="Huber loss threshold on log residuals.")
    fix: dict[str, float] = Field(default_factory=dict, description='Fix parameters: {"E": 1.69}.')
    tie: dict[str, str] | None = Field(None, description='Tie parameters: {"beta": "alpha"}; {} unties.')
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="Interval level 1 - alpha.")
    cuts: list[float] | None = Field(
        None, max_length=20, description="Backtest: compute (or N) quantiles to cut at (default 0.5..0.8)."
    )
    by: Literal["compute", "N"] = Field("compute", description="Backtest: cut by compute or by model size N.")
    interval: Literal["calibrated", "bootstrap", "none"] | None = Field(
        None, description="Backtest: the interval scored (default: calibrated when bootstrapping)."
    )
    name: str | None = Field(None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)


class JobOut(BaseModel):
    """A background job; poll `GET /api/jobs/{id}` until `status` is done or failed."""

    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    progress: str
    created: str
    started: str | None
    finished: str | None
    attempts: int
    fit_id: str | None = Field(description="The stored fit, when a fit job is done.")
    error: str | None
    result: dict[str, Any] | None
    request: dict[str, Any]


def _check_points(points: dict[str, Any]) -> dict[str, Any]:
    if not points:
        raise ValueError("no points to predict")
    sizes = {k: len(v) for k, v in points.items() if isinstance(v, list)}
    distinct = set(sizes.values()) - {1}
    if len(distinct) > 1:
        raise ValueError(
            "columns of different lengths (" + ", ".join(f"{k}: {n}" for k, n in sizes.items()) + ")"
        )
    if 0 in sizes.values():
        raise ValueError("no points to predict")
    return points


class PredictRequest(_Strict):
    """Points as columns (`{"N": [1e9, 2e9], "D": [2e10, 4e10], "precision": "w4a8kv8"}`; a single value is
    used at every point): the law's inputs and optionally `precision` (training precision spec), `ptq` or
    `P_post` (serving bits or format), and a capacity law's effects."""

    fit: str | None = Field(None, max_length=64, description="A fit id from the registry.")
    law: str | None = Field(None, max_length=100, description="A published constant set (kumar2024, ...).")
    points: dict[str, list[Cell] | float | str | None]
    alpha: float | None = Field(None, description="Interval level 1 - alpha (default: the fit's).")
    interval: Literal["calibrated", "bootstrap", "none"] | None = Field(
        None,
        description="calibrated: bootstrap ⊕ extrapolation term (default when the fit has a calibration); "
        "bootstrap: parameter uncertainty only; none.",
    )

    @field_validator("points")
    @classmethod
    def _points(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_points(v)


class PredictOut(BaseModel):
    law: str
    target: str
    unit: str
    source: str
    alpha: float
    n_boot: int
    interval: str = Field(description="The interval's kind: calibrated, bootstrap or none.")
    n_points: int
    points: dict[str, list[Cell]] = Field(description="The inputs and prediction, lower, upper, as columns.")
    warnings: list[str]


class RecommendRequest(_Strict):
    """`scalefit recommend --flops`: compute-optimal N, D and precision for a budget."""

    flops: float = Field(description="Compute budget in FLOPs (bf16-equivalent).")
    law: str | None = Field(None, max_length=100, description="Published law (default kumar2024).")
    fit: str | None = Field(None, max_length=64, description="A fit id from the registry instead of law.")
    profile: str = Field("bits", max_length=50)
    precision: list[str] | str | None = Field(
        None, description="Precisions to search (list or comma-separated)."
    )
    per_kind: bool = False
    serve_precision: float | str | None = Field(None, description="Bits or format the weights are served at.")
    max_params: float | None = None
    max_tokens: float | None = None
    memory_gb: float | None = None
    params: float | None = Field(None, description="Fix N; only tokens and precision are chosen.")
    top: int = Field(6, ge=1, le=1000, description="Alternatives to return.")


class OptionOut(BaseModel):
    precision: str
    spec: str
    P_w: float
    P_a: float
    P_kv: float
    throughput: float
    N: float
    D: float
    tokens_per_param: float
    loss: float
    penalty: float
    bound: str


class RecommendOut(BaseModel):
    law: str
    flops: float
    profile: str
    objective: str
    serve_bits: float | None
    constraints: dict[str, Number]
    best: OptionOut
    loss_interval_95: list[float] | None
    loss_interval_kind: str | None = None
    N_interval_95: list[Number] | None
    D_interval_95: list[Number] | None
    bootstrap_draws: int
    options: list[OptionOut]
    n_options: int
    infeasible: list[str]
    warnings: list[str]


class KnowledgeRequest(_Strict):
    """`scalefit recommend --knowledge-bits`: the parameters a capacity law needs to store that much."""

    knowledge_bits: float
    exposures: float
    law: str | None = Field(
        None, max_length=100, description="Published capacity law (default capacity-allenzhu2024)."
    )
    fit: str | None = Field(None, max_length=64)
    corpus_tokens: float | None = None
    ptq: str | float | None = Field(None, description="Weights served at these bits (4, int8).")
    junk: float | None = None
    domain_token: bool = False
    mlp: str | None = Field(None, max_length=20)
    moe: bool = False


class KnowledgeOut(BaseModel):
    knowledge_bits: float
    exposures: float
    bits_per_param: float
    params: float
    params_interval: list[float] | None
    tokens: float | None
    corpus_tokens: float | None
    law: str
    alpha: float
    n_boot: int
    warnings: list[str]
