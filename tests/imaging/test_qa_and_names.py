"""QA images (mask, blend) and output naming."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from abpn_cli.imaging import SUPPORTED_SUFFIXES, output_suffix, save_blend, save_mask


def test_mask_is_8bit_gray_png(tmp_path: Path) -> None:
    mask = np.array([[0.0, 0.5, 1.0, 1.7], [-0.2, 0.25, 0.998, np.nan]], np.float32)
    save_mask(mask, tmp_path / "m.tmp")  # written as PNG whatever the name
    assert (tmp_path / "m.tmp").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    got = cv2.imread(str(tmp_path / "m.tmp"), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint8 and got.ndim == 2
    assert got.tolist() == [[0, 128, 255, 255], [0, 64, 254, 0]]


def test_blend_mapping(tmp_path: Path) -> None:
    blend = np.zeros((2, 3, 3), np.float32)
    blend[0] = [[-1.0, 0.5, 2.0], [0.5, 0.5, 0.5], [-5.0, 0.0, 9.0]]
    blend[1] = [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.25, 0.75, 1.5]]
    save_blend(blend, tmp_path / "b.png")
    got = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    assert got.dtype == np.uint16
    assert got[0, 0].tolist() == [0, 32768, 65535]  # -1, identity 0.5, 2
    assert got[0, 1].tolist() == [32768] * 3
    assert got[0, 2].tolist() == [0, 21845, 65535]  # clipped outside [-1, 2]
    expected = np.floor((np.clip(blend, -1, 2) + 1) / 3 * 65535 + 0.5)
    assert np.abs(got.astype(float) - expected).max() <= 1
    decoded = got / 65535 * 3 - 1
    assert np.abs(decoded - np.clip(blend, -1, 2)).max() < 1e-4


def test_bad_qa_shapes() -> None:
    with pytest.raises(ValueError):
        save_mask(np.zeros((2, 2, 1), np.float32), Path("unused.png"))
    with pytest.raises(ValueError):
        save_blend(np.zeros((2, 2), np.float32), Path("unused.png"))


def test_output_suffix() -> None:
    assert output_suffix("jpeg", ".JPG") == ".JPG"
    assert output_suffix("jpeg", ".jpeg") == ".jpeg"
    assert output_suffix("jpg", ".png") == ".jpg"
    assert output_suffix("tiff", ".tiff") == ".tiff"
    assert output_suffix("tif", ".TIF") == ".TIF"
    assert output_suffix("tiff", ".jpg") == ".tif"
    assert output_suffix("png", ".tif") == ".png"
    assert output_suffix("webp", ".WebP") == ".WebP"
    assert output_suffix("keep", ".Tiff") == ".Tiff"
    with pytest.raises(ValueError):
        output_suffix("gif", ".jpg")


def test_supported_suffixes() -> None:
    expected = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif", ".hif"}
    expected |= {".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".dng", ".pef", ".srw"}
    assert frozenset(expected) == SUPPORTED_SUFFIXES  # rawpy is a dependency
    assert all(s == s.lower() for s in SUPPORTED_SUFFIXES)
