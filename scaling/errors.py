"""The one exception type for bad user input.

Anything raised as `UserError` is shown by the CLI as a single line `error: <message>` with exit code 2,
never as a traceback (the service answers it with a 4xx and the same line). Raise it for problems the user
can fix (bad paths, bad specs, impossible budgets); let genuine bugs raise ordinary exceptions.

Library code names the Python parameter (`n_params must be positive`) and passes it as `param`; a front
end that calls the parameter something else (the CLI's `--params`) rewrites it with `for_flags`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class UserError(ValueError):
    """Invalid input from the user: the message names the problem in one line.

    `param`: the library parameter the message is about (it appears in the message by that name).
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def for_flags(self, flags: Mapping[str, str]) -> UserError:
        """The same error with library parameter names replaced by the front end's flags
        (`{"n_params": "--params"}`), as whole words: the error's own `param`, and every other parameter
        whose name has an underscore (so plain words such as "law" in a message stay words)."""
        message = str(self)
        for name, flag in flags.items():
            if name == self.param or "_" in name:
                message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, message)
        return UserError(message, param=self.param)
