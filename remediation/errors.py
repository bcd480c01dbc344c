"""The engine's own exception for bad input."""

from __future__ import annotations


class InputError(ValueError):
    """Input that cannot be used (a malformed event, resource id, image reference or definition).

    The message is one line that names the offending field, e.g. ``event.data.resourceUri is
    missing``; the HTTP layer answers 400 with it and the command line exits 2 with it.
    """

    def __init__(self, message: str) -> None:
        # One line, whatever the caller put in: the message goes into HTTP answers and logs.
        super().__init__(" ".join(message.split()))
