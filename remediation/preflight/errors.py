"""Preflight's one error: input it cannot read (exit 2 with a one-line message)."""


class PreflightInputError(ValueError):
    """A path, file or parameters file that cannot be read as any supported definition; the message is one line
    naming the file and the problem."""
