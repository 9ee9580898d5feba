"""Errors the user can act on: each message is one line naming the file, column or problem."""


class BadInput(ValueError):
    """The input data, schema or configuration cannot be used (CLI exit code 2)."""


class GeneratorError(RuntimeError):
    """A generator cannot handle this input; the message names the generator and the reason."""
