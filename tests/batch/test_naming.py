"""Output naming rules (batch/naming.py): RAW+JPEG pairs, two cards with the same names,
folder names that collide too, XMP sidecars; all decided by the plan, before any work."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from abpn_cli.batch import BatchSettings, BatchUsageError, make_plan
from abpn_cli.batch.naming import root_labels
from abpn_cli.batch.plan import SIDECAR_COPIED
from tests.factories import touch

SUFFIXES = frozenset({".jpg", ".png", ".tif", ".dng", ".nef"})


def plan(tmp_path: Path, *inputs: Path, **kw):
    return make_plan(BatchSettings(inputs=inputs, out=tmp_path / "out", **kw), SUFFIXES)


def names(p) -> list[str]:
    return [j.out_rel for j in p.jobs]


def test_raw_plus_jpeg_do_not_collide_and_raw_comes_out_tiff(tmp_path):
    touch(tmp_path / "in", "x.dng", "x.jpg", "y.NEF")
    p = plan(tmp_path, tmp_path / "in")
    assert names(p) == ["x.tif", "x.jpg", "y.tif"]
    # keep: each is written as its source's bytes say (a RAW as TIFF, by save_photo)
    assert [j.fmt for j in p.jobs] == ["keep"] * 3
    assert [j.fmt for j in plan(tmp_path, tmp_path / "in", format="tif").jobs] == ["tiff"] * 3


def test_a_raw_that_would_collide_keeps_its_extension_in_the_name(tmp_path):
    touch(tmp_path / "in", "x.dng", "x.jpg", "x.tif")
    assert names(plan(tmp_path, tmp_path / "in")) == ["x.dng.tif", "x.jpg", "x.tif"]
    touch(tmp_path / "pair", "x.dng", "x.jpg")
    jpg = plan(tmp_path, tmp_path / "pair", format="jpg", dump_mask=True)
    assert names(jpg) == ["x.dng.jpg", "x.jpg"]
    assert jpg.jobs[0].mask.name == "x.dng.mask.png"
    touch(tmp_path / "two", "x.png", "x.jpg")  # no RAW among them: still refused
    with pytest.raises(BatchUsageError, match="same output"):
        plan(tmp_path, tmp_path / "two", format="jpg")


def test_two_cards_with_the_same_names_are_mirrored_under_their_folders(tmp_path):
    touch(tmp_path / "card1", "DCIM/DSC_0001.jpg", "DCIM/DSC_0002.jpg")
    touch(tmp_path / "card2", "DCIM/DSC_0001.jpg")
    p = plan(tmp_path, tmp_path / "card1", tmp_path / "card2", dump_mask=True)
    assert names(p) == ["card1/DCIM/DSC_0001.jpg", "card1/DCIM/DSC_0002.jpg",
                        "card2/DCIM/DSC_0001.jpg"]  # fmt: skip
    assert p.jobs[2].mask == (tmp_path / "out/_qa/card2/DCIM/DSC_0001.mask.png").absolute()
    again = plan(tmp_path, tmp_path / "card1", tmp_path / "card2", dump_mask=True)
    assert names(again) == names(p)  # the same mapping on a rerun: resume works
    touch(tmp_path / "other", "z.jpg")  # without a clash nothing moves
    assert names(plan(tmp_path, tmp_path / "card1", tmp_path / "other")) == [
        "DCIM/DSC_0001.jpg", "DCIM/DSC_0002.jpg", "z.jpg"]  # fmt: skip


def test_folder_names_that_collide_take_parent_folders(tmp_path):
    touch(tmp_path, "a/card/x.jpg", "b/card/x.jpg", "c/other/x.jpg")
    p = plan(tmp_path, tmp_path / "a/card", tmp_path / "b/card", tmp_path / "c/other")
    assert names(p) == ["a/card/x.jpg", "b/card/x.jpg", "c/other/x.jpg"]
    labels = root_labels([Path("/s/a/card"), Path("/t/a/card"), Path("/u/b/card")])
    assert labels == {Path("/s/a/card"): PurePosixPath("s/a/card"),
                      Path("/t/a/card"): PurePosixPath("t/a/card"),
                      Path("/u/b/card"): PurePosixPath("u/b/card")}  # fmt: skip


def test_xmp_sidecar_goes_with_the_raw_and_is_reported_as_copied(tmp_path):
    touch(tmp_path / "in", "x.dng", "x.jpg", "x.xmp", "y.jpg", "y.jpg.xmp", "lone.xmp")
    p = plan(tmp_path, tmp_path / "in")
    cars = {j.rel.name: (j.sidecar and j.sidecar.name, j.sidecar_out) for j in p.jobs}
    out = (tmp_path / "out").absolute()
    assert cars == {
        "x.dng": ("x.xmp", out / "x.xmp"),
        "x.jpg": (None, None),
        "y.jpg": ("y.jpg.xmp", out / "y.jpg.xmp"),
    }
    reasons = {s.source.name: s.reason for s in p.skipped}
    assert reasons == {
        "x.xmp": SIDECAR_COPIED,
        "y.jpg.xmp": SIDECAR_COPIED,
        "lone.xmp": "sidecar file (not a photo)",
    }
