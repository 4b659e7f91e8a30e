"""For the benchmark scripts: replace one `## ` section of docs/benchmarks.md, leaving the others alone;
name the machine a number was measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """CPU model, its widest SIMD (and native bf16 matmul support) and the vCPUs this process may use."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "?")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    simd = "AVX-512" if "avx512f" in flags else "AVX2 only" if "avx2" in flags else "no AVX2"
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        simd += " with " + " and ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags)
    return f"{model}, {simd}, {len(os.sched_getaffinity(0))} vCPUs"


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts with `heading` (up to the next `## `) by `text` where it stands;
    append it when the file has no such section."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(heading)
    if start == -1:
        path.write_text(old.rstrip() + "\n\n" + text.rstrip() + "\n")
        return
    end = old.find("\n## ", start + len(heading))
    rest = old[end + 1 :] if end != -1 else ""
    path.write_text(old[:start] + text.rstrip() + "\n" + ("\n" + rest if rest else ""))
