"""Shared test fixtures: the public datasets beside the repo, and quiet, deterministic torch."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data/` beside the repo; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public scaling-law datasets not found at {SHARED_DATA} (they live beside the repo)")
    return SHARED_DATA
