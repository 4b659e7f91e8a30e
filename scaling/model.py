"""A precision-aware decoder-only transformer, readable on one screen (in the spirit of nanoGPT's model.py).

Token embedding → n_layers × [RMSNorm → causal self-attention with RoPE → residual,
RMSNorm → MLP (GELU, or SwiGLU) → residual] → RMSNorm → output head. No biases, no dropout.

Precision (Kumar et al. 2024, "Scaling Laws for Precision"): every hidden linear layer is a `QLinear`
that fake-quantizes its weight (per output channel) and its input activation (per tensor); keys and values
are fake-quantized per tensor before attention. The embedding and output head stay high precision.
RoPE angles, norms and the logits are computed in fp32 whatever the matmul dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from scaling.errors import UserError
from scaling.formats import NumberFormat, PrecisionSpec
from scaling.quant import fake_quant


@dataclass
class ModelConfig:
    vocab_size: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    seq_len: int = 128
    mlp: str = (
        "gelu"  # "gelu" (default: gated MLPs hurt capacity in small models, Allen-Zhu & Li 2024) or "swiglu"
    )
    tie_embeddings: bool = False
    rope_base: float = 10_000.0
    precision: PrecisionSpec = field(default_factory=lambda: PrecisionSpec.parse("bf16"))

    def __post_init__(self) -> None:
        if self.mlp not in ("gelu", "swiglu"):
            raise UserError(f"mlp must be 'gelu' or 'swiglu', got {self.mlp!r}")
        if min(self.vocab_size, self.d_model, self.n_layers, self.n_heads, self.d_ff, self.seq_len) <= 0:
            raise UserError("model dimensions must all be positive")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise UserError(f"d_model={self.d_model} must split into n_heads={self.n_heads} even-sized heads")

    @property
    def n_params(self) -> int:
        """Non-embedding N: attention 4·d², MLP 2·d·d_ff (GELU) or 3·d·d_ff (SwiGLU), RMSNorm gains."""
        mlp = (2 if self.mlp == "gelu" else 3) * self.d_model * self.d_ff
        return self.n_layers * (4 * self.d_model**2 + mlp + 2 * self.d_model) + self.d_model

    @property
    def n_params_total(self) -> int:
        """All parameters: N plus the token embedding and (unless tied) the output head."""
        return self.n_params + self.vocab_size * self.d_model * (1 if self.tie_embeddings else 2)

    @classmethod
    def for_params(
        cls, n: float, *, mlp: str = "gelu", head_dim: int = 32, aspect: float = 32.0, **kw
    ) -> ModelConfig:
        """The shape family: the (n_layers, d_model) whose non-embedding N is closest to `n` (in log space).

        d_model is a multiple of `head_dim` (n_heads = d_model / head_dim), d_ff = 4·d_model for GELU and
        the parameter-matched ≈ 8/3·d_model (multiple of 16) for SwiGLU. Among shapes within 3% of the
        closest N, the one whose aspect ratio d_model / n_layers is nearest `aspect` wins, so shapes grow
        in depth and width together (Kaplan et al. 2020 find loss flat over a wide range of aspect ratios).
        """
        if not n > 0 or not math.isfinite(n):
            raise UserError(f"the target parameter count must be positive, got {n}")
        shapes = []
        for n_layers in range(1, 97):
            width = head_dim * round(math.sqrt(n / (12 * n_layers)) / head_dim)  # N ≈ 12·L·d² (4·d MLP)
            for d_model in {max(head_dim, width + k * head_dim) for k in (-1, 0, 1)}:
                d_ff = default_d_ff(d_model, mlp)
                cfg = cls(
                    d_model=d_model, n_layers=n_layers, n_heads=d_model // head_dim, d_ff=d_ff, mlp=mlp, **kw
                )
                shapes.append(
                    (abs(math.log(cfg.n_params / n)), abs(math.log(d_model / n_layers / aspect)), cfg)
                )
        closest = min(s[0] for s in shapes)
        return min((s for s in shapes if s[0] <= closest + 0.03), key=lambda s: s[1])[2]


def default_d_ff(d_model: int, mlp: str) -> int:
    """4·d_model for GELU; the parameter-matched ≈ 8/3·d_model (a multiple of 16) for SwiGLU."""
    return 4 * d_model if mlp == "gelu" else 16 * math.ceil(8 * d_model / 3 / 16)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + ε) · g, computed in fp32 (Zhang & Sennrich 2019)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight).to(x.dtype)


class QLinear(nn.Linear):
    """nn.Linear without bias whose weight (per output channel) and input (per tensor) are fake-quantized."""

    def __init__(self, d_in: int, d_out: int, w_fmt: NumberFormat | None, a_fmt: NumberFormat | None) -> None:
        super().__init__(d_in, d_out, bias=False)
        self.w_fmt, self.a_fmt = w_fmt, a_fmt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.w_fmt is None else fake_quant(self.weight, self.w_fmt, axis=0)
        x = x if self.a_fmt is None else fake_quant(x, self.a_fmt)
        return F.linear(x, w)


def rope_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of the rotary angles θ_{t,i} = t · base^(−2i/head_dim) (Su et al. 2021), in fp32."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_{2i}, x_{2i+1}) of x [B, H, T, hd] by the angles, in fp32; returns x's dtype."""
    x32 = x.float()
    x1, x2 = x32[..., 0::2], x32[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    return out.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        p = cfg.precision
        self.n_heads, self.kv_fmt = cfg.n_heads, p.kv
        self.qkv = QLinear(cfg.d_model, 3 * cfg.d_model, p.w, p.a)
        self.proj = QLinear(cfg.d_model, cfg.d_model, p.w, p.a)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.kv_fmt is not None:  # the KV cache holds k (after RoPE) and v: quantize them per tensor
            k, v = fake_quant(k, self.kv_fmt), fake_quant(v, self.kv_fmt)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        p, self.gated = cfg.precision, cfg.mlp == "swiglu"
        self.up = QLinear(cfg.d_model, (2 if self.gated else 1) * cfg.d_ff, p.w, p.a)
        self.down = QLinear(cfg.d_ff, cfg.d_model, p.w, p.a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.gated:
            gate, h = h.chunk(2, dim=-1)
            return self.down(F.silu(gate) * h)
        return self.down(F.gelu(h))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm1, self.attn = RMSNorm(cfg.d_model), Attention(cfg)
        self.norm2, self.mlp = RMSNorm(cfg.d_model), MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        cos, sin = rope_tables(cfg.seq_len, cfg.d_model // cfg.n_heads, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self) -> int:
        """Non-embedding parameters N (everything but the token embedding and the output head)."""
        skip = {id(self.wte.weight), id(self.lm_head.weight)}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)

    def n_params_total(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids [B, T] → fp32 logits [B, T, vocab]."""
        T = idx.shape[1]
        if T > self.config.seq_len:
            raise UserError(
                f"sequence of {T} tokens is longer than the model's context {self.config.seq_len}"
            )
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        x = self.norm(x)
        with torch.autocast(device_type=x.device.type, enabled=False):  # the head and logits stay fp32
            return F.linear(x.float(), self.lm_head.weight.float())
