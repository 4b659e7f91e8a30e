"""scaling: the model, number formats, fake quantization, PTQ, data and the training engine.

Public API::

    from scaling import PrecisionSpec, TrainConfig, train
    result = train(TrainConfig(n=1e6, tokens=5e6, precision="w4a8kv8"))
    result.val_loss, result.precision.name

Names load on first use (PEP 562), so `import scaling` (and `scaling.errors`, which every package uses)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from scaling.errors import UserError
from scaling.version import __version__

_EXPORTS = {
    "PrecisionSpec": "scaling.formats",
    "TrainConfig": "scaling.train",
    "RunResult": "scaling.train",
    "train": "scaling.train",
}

__all__ = ["UserError", "__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scaling' has no attribute {name!r}")
