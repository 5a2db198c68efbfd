"""Errors a user can cause and fix.

Library code raises :class:`MlmtoolError` (a ``ValueError``) with one helpful line; the
command line turns it into ``Error: <line>`` on stderr and exit status 2, never a traceback.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class MlmtoolError(ValueError):
    """A mistake in the user's input or environment, explained in one line.

    The message must be a single line that says what is wrong and, where possible, what to
    try instead (``--model <dir>``, ``mlmtool models``, ...).
    """


class ModelNotAvailableError(MlmtoolError):
    """The requested model is not on disk and the model hub cannot be reached."""


class NoMLMHeadError(MlmtoolError):
    """The model is an encoder without a masked-LM head, so it cannot fill masks."""
