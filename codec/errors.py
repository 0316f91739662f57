"""User-facing errors.

Anything a user can cause (a missing file, a damaged .nirv, a wrong option) raises
:class:`CodecError` with a one-line message that names the file, what is wrong and what to
do. The CLI prints that line and exits non-zero; it never shows a traceback for these.
"""


class CodecError(Exception):
    """A problem with the user's input or options, reported as one line."""


class InputError(CodecError):
    """An input video or option cannot be used."""


class BitstreamError(CodecError):
    """A .nirv file is damaged, truncated, or not a .nirv file."""
