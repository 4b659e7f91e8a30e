"""The one exception type for bad user input.

Anything raised as `UserError` is shown by the CLI as a single line `error: <message>` with exit code 2,
never as a traceback (the service answers it with a 4xx and the same line). Raise it for problems the user
can fix (bad paths, bad specs, impossible budgets); let genuine bugs raise ordinary exceptions.

Library code names the Python parameter (`n_params must be positive`) and passes it as `param`; a front
end that calls the parameter something else (the CLI's `--params`) rewrites it with `for_flags`.
"""

from __future__ import annotations

import os
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


def os_error_cause(exc: OSError) -> tuple[int | None, str]:
    """(errno, the system's words for it) of a failed file operation; pyarrow's errors carry the errno
    only inside a long message ("... [errno 28] No space left on device")."""
    errno = exc.errno or None
    if errno is None and (found := re.search(r"errno (\d+)", str(exc), re.IGNORECASE)):
        errno = int(found.group(1))
    if errno:
        return errno, os.strerror(errno)
    text = exc.strerror or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc))
    return None, text.splitlines()[0] if text.strip() else type(exc).__name__


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """`<path>: <cause>` for a failed file operation (a full disk, a read-only filesystem, a missing or
    wrong-kind path): `path` (else the exception's filename) and the system's words for its errno."""
    where = path if path is not None else exc.filename
    if where is None and (quoted := re.search(r"file '([^']+)'", str(exc))):  # pyarrow names it so
        where = quoted.group(1)
    cause = os_error_cause(exc)[1]
    return f"{os.fspath(where)}: {cause}" if where is not None else cause


def os_error_about(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """`exc` as a plain OSError(errno, cause, path) about `path`: the file a caller was writing (not its temp
    file), for errors that name no file at all (a full disk surfaces on a buffered write's flush)."""
    errno, cause = os_error_cause(exc)
    err = OSError(errno, cause, os.fspath(path)) if errno else OSError(cause)
    err.filename = os.fspath(path)
    return err
