"""`python -m abpn_cli` with slowed-down stages, so a test can kill it at a chosen moment.

ABPN_TEST_DELAY seconds are added to each retouch (inside the abortable model section) and
to each output write, half-way through writing the file, so a kill lands mid-write with a
partial temp file on disk. Everything else is the real CLI.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import abpn_cli.batch.pipeline as pipeline
from abpn_cli.cli import app

DELAY = float(os.environ.get("ABPN_TEST_DELAY", "0.2"))
_real_retouch = pipeline.retouch
_real_save = pipeline.save_photo


def slow_retouch(*args, **kwargs):
    time.sleep(DELAY)
    return _real_retouch(*args, **kwargs)


def slow_save(photo, pixels, dest: Path, **kwargs) -> None:
    _real_save(photo, pixels, dest, **kwargs)
    data = dest.read_bytes()
    with open(dest, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(DELAY)
        f.write(data[len(data) // 2 :])


pipeline.retouch = slow_retouch
pipeline.save_photo = slow_save

if __name__ == "__main__":
    sys.exit(app(prog_name="abpn"))
