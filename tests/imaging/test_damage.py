"""Damaged JPEGs are flagged (imaging/damage.py): corrupt entropy-coded data, a stream cut
before its EOI (with or without one appended), a dropped restart segment. Valid camera files
(examples/photos, tests/data) are not; --accept-damaged decodes what libjpeg recovered."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from abpn_cli.imaging import ImageError, read_photo
from abpn_cli.imaging.damage import jpeg_damage
from abpn_cli.imaging.jpeg import parse_header
from tests.factories import pattern

ROOT = Path(__file__).resolve().parents[2]
VALID = sorted((ROOT / "examples/photos").glob("*.jpg")) + sorted(
    p for p in (ROOT / "tests/data").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")
)


def clean_jpeg(restart_rows: int = 0) -> bytes:
    """A 256x192 baseline JPEG by OpenCV (independent of Pillow), optionally with RST
    markers every `restart_rows` MCU rows."""
    image = pattern(192, 256)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90]
    if restart_rows:
        params += [cv2.IMWRITE_JPEG_RST_INTERVAL, restart_rows * 16]  # 16 MCUs per row
    ok, buf = cv2.imencode(".jpg", image[:, :, ::-1], params)
    assert ok
    return buf.tobytes()


def scan(data: bytes) -> tuple[int, int]:
    """(start, end) of the entropy-coded data: after the SOS header, before EOI."""
    return parse_header(data).scan_start, data.rindex(b"\xff\xd9")


def flipped(data: bytes, run: int = 256, seed: int = 0) -> bytes:
    """Random bits flipped in a run of bytes in the middle of the scan, never making or
    breaking a 0xFF byte. (Not every such flip is detectable: a Huffman stream often
    resynchronises and decodes to the right length; README gives the measured rates.)"""
    start, end = scan(data)
    out = bytearray(data)
    rng = np.random.default_rng(seed)
    middle = start + (end - start) // 3
    for i in range(middle, middle + run):
        value = out[i] ^ int(rng.integers(1, 256))
        if 0xFF not in (out[i], out[i - 1], value):
            out[i] = value
    return bytes(out)


def zeroed(data: bytes, run: int = 512) -> bytes:
    """A sector of the scan read back as zeros (a common card-reader failure)."""
    start, end = scan(data)
    middle = start + (end - start) // 3
    return data[:middle] + bytes(run) + data[middle + run :]


def damaged_cases() -> dict[str, bytes]:
    good, rst = clean_jpeg(), clean_jpeg(restart_rows=2)
    start, end = scan(good)
    cut = good[: start + (end - start) // 2]
    first = rst.index(b"\xff\xd0", scan(rst)[0])
    second = rst.index(b"\xff\xd1", first)
    return {
        "flipped": flipped(good),
        "zeroed": zeroed(good),
        "cut_then_eoi": cut + b"\xff\xd9",
        "rst_dropped": rst[:first] + rst[second:],  # RST0 and the segment after it gone
    }


@pytest.mark.parametrize("name", ["flipped", "zeroed", "cut_then_eoi", "rst_dropped"])
def test_damaged_jpeg_fails_with_libjpegs_reason(tmp_path: Path, name: str) -> None:
    data = damaged_cases()[name]
    assert jpeg_damage(data), name
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(data)
    with pytest.raises(ImageError, match=r"^damaged JPEG \(Corrupt JPEG data: .*--accept-damaged"):
        read_photo(path)


@pytest.mark.parametrize("name", ["flipped", "zeroed", "cut_then_eoi", "rst_dropped"])
def test_accept_damaged_decodes_what_was_recovered(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(damaged_cases()[name])
    photo = read_photo(path, accept_damaged=True)
    assert photo.pixels.shape == (192, 256, 3)
    assert photo.damage and all("Corrupt JPEG data" in d for d in photo.damage)


def test_truncated_without_eoi_fails_and_is_accepted_with_grey_rows(tmp_path: Path) -> None:
    good = clean_jpeg()
    start, end = scan(good)
    path = tmp_path / "cut.jpg"
    path.write_bytes(good[: start + (end - start) // 2])
    with pytest.raises(ImageError, match=r"^truncated JPEG .*--accept-damaged"):
        read_photo(path)
    photo = read_photo(path, accept_damaged=True)
    assert photo.damage[0] == "truncated JPEG (no end-of-image marker)"
    bottom = photo.pixels[-8:].astype(int)
    assert np.abs(bottom - 128).max() <= 2  # libjpeg fills what is missing with grey


def test_intact_files_are_not_flagged(tmp_path: Path) -> None:
    assert len(VALID) >= 3
    for path in VALID:
        assert jpeg_damage(path.read_bytes()) == (), path
        assert read_photo(path).damage == ()
    for data in (clean_jpeg(), clean_jpeg(restart_rows=1)):
        assert jpeg_damage(data) == ()


def test_other_stderr_output_is_kept(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    os.write(2, b"before\n")
    assert jpeg_damage(damaged_cases()["flipped"])
    assert jpeg_damage(clean_jpeg()) == ()
    err = capfd.readouterr().err
    assert "before" in err and "Corrupt JPEG" not in err  # warnings captured, not leaked
