"""The one exception the imaging package raises for a bad or unsupported input file."""

from __future__ import annotations


class ImageError(Exception):
    """A file cannot be read or written; the message is a specific, user-facing reason.

    The batch runner reports the message verbatim and moves on to the next file, so it must
    name the actual problem ("truncated JPEG (premature end of data)") rather than a generic
    "cannot decode".
    """
