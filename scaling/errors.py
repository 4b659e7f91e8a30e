"""The one exception type for bad user input.

Anything raised as `UserError` is shown by the CLI as a single line `error: <message>` with exit code 2,
never as a traceback. Raise it for problems the user can fix (bad paths, bad specs, impossible budgets);
let genuine bugs raise ordinary exceptions.
"""


class UserError(ValueError):
    """Invalid input from the user: the message names the problem in one line."""
