"""Writing an output file so that a failure never leaves a half-written file behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_file(dest: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create exactly `dest` and fill it; if filling fails, `dest` is removed again."""
    with open(dest, "wb") as f:
        try:
            write(f)
        except BaseException:
            f.close()
            dest.unlink(missing_ok=True)
            raise
