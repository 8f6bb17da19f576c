"""The eval-set writer: byte-deterministic files, region masks found beside the pairs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.training.data import find_pairs, load_pair
from abpn_cli.training.eval_set import find_region, make_eval_set
from tests.factories import gradient_photo, write_rgb


def test_make_eval_set_is_byte_deterministic(tmp_path: Path, photo_files: list[Path]) -> None:
    small = write_rgb(tmp_path / "tiny.png", gradient_photo(90, 120, 7))  # needs upscaling
    srcs = [*photo_files, small]
    items = make_eval_set(srcs, tmp_path / "e1", size=128, seed=11, count_per_photo=2)
    make_eval_set(srcs, tmp_path / "e2", size=128, seed=11, count_per_photo=2)
    files1 = sorted(p.relative_to(tmp_path / "e1") for p in (tmp_path / "e1").rglob("*"))
    files2 = sorted(p.relative_to(tmp_path / "e2") for p in (tmp_path / "e2").rglob("*"))
    assert files1 == files2 and len(files1) == 3 + 3 * 6 + 1  # 3 folders, 18 PNGs, manifest
    for rel in files1:
        if (tmp_path / "e1" / rel).is_file():
            assert (tmp_path / "e1" / rel).read_bytes() == (tmp_path / "e2" / rel).read_bytes()

    assert [it.upscaled for it in items] == [False, False, False, False, True, True]
    assert items[0].name == "0000_p0_00"
    manifest = json.loads((tmp_path / "e1" / "manifest.json").read_text())
    assert manifest["seed"] == 11 and len(manifest["items"]) == 6

    pairs = find_pairs(tmp_path / "e1")
    assert len(pairs) == 6
    b, a = load_pair(*pairs[0])
    assert b.shape == (128, 128, 3)
    region_path = find_region(tmp_path / "e1", pairs[0][0])
    assert region_path is not None
    region = cv2.imread(str(region_path), cv2.IMREAD_UNCHANGED)
    assert region.shape == (128, 128) and region.dtype == np.uint8
    assert np.abs(b - a)[region == 0].max() <= 1.5 / 255  # untouched outside the region
    assert np.abs(b - a).max() > 0.02

    other = make_eval_set(srcs[:1], tmp_path / "e3", size=128, seed=12)
    assert (tmp_path / "e3" / "before" / f"{other[0].name}.png").read_bytes() != (
        tmp_path / "e1" / "before" / "0000_p0_00.png"
    ).read_bytes()
