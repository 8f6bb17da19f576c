"""Damaged JPEGs: what libjpeg recovers from silently but warns about.

libjpeg does not fail on corrupt entropy-coded data, a bad Huffman code, a missing restart
marker or a stream cut short and closed with EOI: it fills what it cannot decode (grey or
smeared blocks) and emits a *warning*. Pillow drops those warnings, so a damaged file would
be retouched and shipped as if it were fine. OpenCV's libjpeg prints them to stderr
(libjpeg's default message handler), so the stream is decoded once more through
cv2.imdecode with file descriptor 2 captured. The decode is at 1/8 scale in grey: libjpeg
still entropy-decodes every block of every component (that is where the damage shows),
while the inverse DCT, upsampling and colour conversion are mostly skipped.

Only warnings that mean lost image data count as damage (DAMAGE_MARKERS); others, such as
an unknown JFIF revision, do not. Anything else a thread wrote to stderr meanwhile is
written back after the decode.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

import cv2
import numpy as np

# libjpeg warning texts (jerror.h) that mean image data was lost or guessed.
DAMAGE_MARKERS = (
    "Corrupt JPEG data",  # JWRN_EXTRANEOUS_DATA, JWRN_HIT_MARKER, JWRN_MUST_RESYNC
    "Premature end of JPEG file",  # JWRN_JPEG_EOF
    "Huffman",  # JWRN_HUFF_BAD_CODE
    "Invalid SOS parameters",  # JWRN_NOT_SEQUENTIAL on a broken progressive stream
    "Inconsistent progression",  # JWRN_BOGUS_PROGRESSION
)
_STDERR_LOCK = threading.Lock()  # fd 2 is process-wide: one capture at a time


@contextlib.contextmanager
def _captured_fd2() -> Iterator[list[str]]:
    """Redirect file descriptor 2 into a temp file; the yielded list gets its lines."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode("utf-8", errors="replace").splitlines()


def jpeg_damage(data: bytes) -> tuple[str, ...]:
    """libjpeg's data-loss warnings for this JPEG stream, in order, without repeats."""
    buffer = np.frombuffer(data, np.uint8)
    with _STDERR_LOCK, _captured_fd2() as lines:
        cv2.imdecode(buffer, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    damage, other = [], []
    for line in lines:
        text = line.strip()
        is_damage = any(marker in text for marker in DAMAGE_MARKERS)
        (damage if is_damage else other).append(text)
    if other:
        sys.stderr.write("\n".join(other) + "\n")
    return tuple(dict.fromkeys(damage))
