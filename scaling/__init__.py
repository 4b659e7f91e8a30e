"""scaling: the model, number formats, fake quantization, PTQ, data and the training engine."""

from scaling.errors import UserError
from scaling.version import __version__

__all__ = ["UserError", "__version__"]
