"""Errors a user can cause and fix.

Library code raises :class:`MlmtoolError` (a ``ValueError``) with one helpful line; the
command line turns it into ``Error: <line>`` on stderr and exit status 2, never a traceback.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class MlmtoolError(ValueError):
    """A mistake in the user's input or environment, explained in one line.

    The message must be a single line that says what is wrong and, where possible, what to
    try instead (``mlmtool models``, ...). Library messages name parameters, not flags:
    when the message starts with the parameter's name (``"top_k must be at least 1"``),
    pass ``param="top_k"`` and the command line shows the flag instead (``--top-k must be
    at least 1``).

    Args:
        message: the one line.
        param: the Python parameter the message is about, or None.
    """

    def __init__(self, message: str = "", param: str | None = None):
        super().__init__(message)
        self.param = param


class ModelNotAvailableError(MlmtoolError):
    """The requested model is not on disk and the model hub cannot be reached."""


class NoMLMHeadError(MlmtoolError):
    """The model is an encoder without a masked-LM head, so it cannot fill masks."""
