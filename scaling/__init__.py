"""scaling: the model, number formats, fake quantization, PTQ, data and the training engine.

Public API::

    from scaling import PrecisionSpec, TrainConfig, train
    result = train(TrainConfig(n=1e6, tokens=5e6, precision="w4a8kv8"))
    result.val_loss, result.precision.name

Names load on first use (PEP 562), so `import scaling` (and `scaling.errors`, which every package uses)
does not import torch. `scaling.train` is the function `train`; its module is `sys.modules["scaling.train"]`
(`from scaling.train import TrainConfig` works as usual).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from scaling.errors import UserError
from scaling.version import __version__

_EXPORTS = {
    "PrecisionSpec": "scaling.formats",
    "TrainConfig": "scaling.train",
    "RunResult": "scaling.train",
}

__all__ = ["UserError", "__version__", "train", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scaling' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package module, with `train` meaning the training function even after the submodule
    `scaling.train` is imported (the import system binds submodules as package attributes)."""

    @property
    def train(self) -> Any:
        """Train one model: `scaling.train.train(config, data=None) -> RunResult`."""
        return importlib.import_module("scaling.train").train

    @train.setter
    def train(self, _module: Any) -> None:  # the import system binding the submodule: keep the function
        pass


sys.modules[__name__].__class__ = _Package
