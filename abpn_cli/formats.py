"""The output formats `--format` accepts: one owner, no dependencies, so the CLI builds its
--help from the same list the batch settings check (`batch/settings.py`) without importing
torch."""

from __future__ import annotations

FORMAT_CHOICES = ("keep", "jpg", "jpeg", "png", "tif", "tiff", "webp", "heic")
