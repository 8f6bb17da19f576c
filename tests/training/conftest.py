"""Shared by the training tests: one torch thread (tiny models run faster on one than on two
busy cores) and a pair of small photo files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.factories import gradient_photo, write_rgb


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def photo_files(tmp_path: Path) -> list[Path]:
    """Two small photo-like files, a PNG and a JPEG, of different aspect ratios."""
    return [
        write_rgb(tmp_path / "p0.png", gradient_photo(200, 300, 0)),
        write_rgb(tmp_path / "p1.jpg", gradient_photo(260, 180, 1)),
    ]
