"""Chroma subsampling and tables written for each source (imaging.jpegenc): 4:4:0 and 4:1:1
go out as they came when libjpeg's quality setting reproduces the source's tables."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from PIL import Image

from abpn_cli.imaging import read_photo, save_photo
from abpn_cli.imaging.jpegenc import ijg_quality, ijg_tables
from tests.factories import pattern

SAMPLING = {"4:4:0": ((1, 2), (1, 1), (1, 1)), "4:1:1": ((4, 1), (1, 1), (1, 1))}
EXIFTOOL_NAME = {"4:4:0": "1 2", "4:1:1": "4 1", "4:4:4": "1 1", "4:2:0": "2 2"}


def sof_sampling(data: bytes) -> tuple[tuple[int, int], ...]:
    """(h, v) per component from the SOF0/SOF2 segment, read without any codec."""
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC2):
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    ncomp = data[pos + 9]
    comps = data[pos + 10 : pos + 10 + 3 * ncomp]
    return tuple((comps[i + 1] >> 4, comps[i + 1] & 15) for i in range(0, 3 * ncomp, 3))


def tables(path: Path) -> list[tuple[int, ...]]:
    with Image.open(path) as im:
        return [tuple(im.quantization[k]) for k in sorted(im.quantization)]


def libjpeg_source(path: Path, name: str, quality: int) -> Path:
    code = name.replace(":", "")  # "4:4:0" -> "440"
    data = imagecodecs.jpeg8_encode(pattern(40, 56), level=quality, subsampling=code)
    path.write_bytes(bytes(data))
    assert sof_sampling(path.read_bytes()) == SAMPLING[name]
    return path


def exiftool_subsampling(path: Path) -> str | None:
    exe = shutil.which("exiftool")
    if exe is None:
        return None
    args = [exe, "-s3", "-n", "-YCbCrSubSampling", str(path)]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def test_ijg_quality_finds_libjpegs_own_tables() -> None:
    assert all(ijg_quality(ijg_tables(q)) == q for q in (1, 12, 50, 75, 95, 100))
    luma, chroma = ijg_tables(80)
    assert ijg_quality([luma, chroma[::-1]]) is None
    assert ijg_quality([luma]) is None


@pytest.mark.parametrize("name", ["4:4:0", "4:1:1"])
def test_source_subsampling_and_tables_are_written(tmp_path: Path, name: str) -> None:
    src = libjpeg_source(tmp_path / "src.jpg", name, 83)
    photo = read_photo(src)
    assert photo.meta.jpeg is not None and photo.meta.jpeg.subsampling == name
    save_photo(photo, photo.pixels, tmp_path / "out.jpg")
    out = tmp_path / "out.jpg"
    assert sof_sampling(out.read_bytes()) == SAMPLING[name]
    assert tables(out) == tables(src) == list(ijg_tables(83))
    assert np.abs(read_photo(out).pixels.astype(int) - photo.pixels).mean() < 3
    assert exiftool_subsampling(out) in (None, EXIFTOOL_NAME[name])


def test_jpeg_quality_keeps_4_4_0(tmp_path: Path) -> None:
    photo = read_photo(libjpeg_source(tmp_path / "src.jpg", "4:4:0", 60))
    save_photo(photo, photo.pixels, tmp_path / "out.jpg", jpeg_quality=92)
    assert sof_sampling((tmp_path / "out.jpg").read_bytes()) == SAMPLING["4:4:0"]
    assert tables(tmp_path / "out.jpg") == list(ijg_tables(92))


@pytest.mark.parametrize(("name", "fallback"), [("4:4:0", "4:4:4"), ("4:1:1", "4:2:0")])
def test_other_tables_stay_exact_and_subsampling_falls_back(
    tmp_path: Path, name: str, fallback: str
) -> None:
    """Tables no libjpeg quality makes (a camera's own): kept, at the documented fallback."""
    data = bytearray(libjpeg_source(tmp_path / "ijg.jpg", name, 83).read_bytes())
    dqt = data.index(b"\xff\xdb")
    data[dqt + 5 + 63] += 1  # the luma table's last step: now no IJG quality matches
    src = tmp_path / "camera.jpg"
    src.write_bytes(bytes(data))
    assert ijg_quality(tables(src)) is None
    photo = read_photo(src)
    save_photo(photo, photo.pixels, tmp_path / "out.jpg")
    out = tmp_path / "out.jpg"
    assert tables(out) == tables(src)
    assert exiftool_subsampling(out) in (None, EXIFTOOL_NAME[fallback])
    expected = {"4:4:4": ((1, 1),) * 3, "4:2:0": ((2, 2), (1, 1), (1, 1))}[fallback]
    assert sof_sampling(out.read_bytes()) == expected
