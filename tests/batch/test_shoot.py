"""One real shoot's mix in one batch (#10): two cards with the same names, RAW+JPEG pairs
with an XMP sidecar, a HEIC, a damaged JPEG and files abpn does not read. Every file on disk
is in the report exactly once with a status and a reason, and a rerun maps the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from abpn_cli.exitcodes import EXIT_FAILED
from tests.factories import make_photo
from tests.imaging.dng import write_dng
from tests.imaging.test_damage import zeroed

pytest.importorskip("rawpy")
HEIC = Path(__file__).parent.parent / "data" / "heif" / "RGB_10__29x100.heif"


def make_shoot(root: Path) -> list[Path]:
    """Two cards whose camera numbered the files alike; returns every file written."""
    for card, seed in (("card1", 0), ("card2", 1)):
        dcim = root / card / "DCIM"
        make_photo(dcim / "DSC_0001.jpg", seed=seed)
        write_dng(dcim / "DSC_0001.dng")
        (dcim / "DSC_0001.xmp").write_text("<x:xmpmeta/>")
    dcim = root / "card1" / "DCIM"
    shutil.copy(HEIC, dcim / "IMG_0002.HEIC")
    good = make_photo(dcim / "tmp.jpg", seed=5).read_bytes()
    (dcim / "tmp.jpg").unlink()
    (dcim / "DSC_0003.jpg").write_bytes(zeroed(good))
    (dcim / "DSC_0004.avif").write_bytes(b"\0\0\0\x1cftypavif")
    (dcim / "notes.txt").write_text("shoot notes")
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_file_of_a_shoot_is_accounted_for(tmp_path: Path, cli) -> None:
    on_disk = make_shoot(tmp_path / "in")
    cards = (tmp_path / "in/card1", tmp_path / "in/card2")
    out, report_path = tmp_path / "done", tmp_path / "r.json"
    result, report = cli(*cards, "--out", out, report=report_path)
    assert result.exit_code == EXIT_FAILED, result.output  # the damaged JPEG failed
    files = {Path(f["input"]): f for f in report["files"]}
    assert sorted(files) == on_disk and len(report["files"]) == len(on_disk)  # once each
    assert all(f["status"] in ("ok", "failed", "skipped") for f in files.values())
    assert all(f["error"] for f in files.values() if f["status"] != "ok")
    summary = report["summary"]
    assert summary["ok"] + summary["failed"] + summary["skipped"] == len(on_disk)
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (5, 1, 4)
    damaged = files[tmp_path / "in/card1/DCIM/DSC_0003.jpg"]
    assert damaged["status"] == "failed" and damaged["error"].startswith("damaged JPEG (")

    dng = files[tmp_path / "in/card2/DCIM/DSC_0001.dng"]
    assert dng["output"] == str((out / "card2/DCIM/DSC_0001.tif").absolute())
    assert dng["bit_depth"] == 16 and dng["develop"]["use_camera_wb"] is True
    with tifffile.TiffFile(out / "card2/DCIM/DSC_0001.tif") as tif:
        assert tif.pages.first.dtype == np.uint16
        assert tif.pages.first.tags["ExifTag"].value["ISOSpeedRatings"] == 200
    for card in ("card1", "card2"):
        assert (out / card / "DCIM/DSC_0001.jpg").is_file()
        assert (out / card / "DCIM/DSC_0001.xmp").read_text() == "<x:xmpmeta/>"
    assert (out / "card1/DCIM/IMG_0002.HEIC").is_file()
    sidecar = files[tmp_path / "in/card1/DCIM/DSC_0001.xmp"]
    assert sidecar["error"] == "skipped: XMP sidecar (copied next to its photo's output)"

    again, report2 = cli(*cards, "--out", out, "--accept-damaged", report=report_path)
    assert again.exit_code == 0, again.output
    by_input = {Path(f["input"]): f for f in report2["files"]}
    redone = [p for p, f in by_input.items() if f["status"] == "ok"]
    assert redone == [tmp_path / "in/card1/DCIM/DSC_0003.jpg"]  # the rest resumed as done
    assert by_input[redone[0]]["damaged"].startswith("Corrupt JPEG data")
    assert json.loads(report_path.read_text())["settings"]["accept_damaged"] is True


def input_state(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_rerun_keeps_develop_and_damaged_and_refreshes_sidecars(tmp_path: Path, cli) -> None:
    """Files finished in an earlier run: the report still says how the RAW was developed
    and what damage was accepted; a sidecar edited or added since is copied (atomically,
    the input untouched), an unchanged copy is left alone."""
    make_shoot(tmp_path / "in")
    cards = (tmp_path / "in/card1", tmp_path / "in/card2")
    out, report_path = tmp_path / "done", tmp_path / "r.json"
    first, report1 = cli(*cards, "--out", out, "--accept-damaged", report=report_path)
    assert first.exit_code == 0, first.output
    dcim1 = tmp_path / "in/card1/DCIM"
    (dcim1 / "DSC_0001.xmp").write_text("<x:xmpmeta>edited</x:xmpmeta>")
    (dcim1 / "IMG_0002.xmp").write_text("<x:xmpmeta>new</x:xmpmeta>")
    inputs = input_state(tmp_path / "in")
    unchanged = (out / "card2/DCIM/DSC_0001.xmp").stat().st_mtime_ns

    again, report2 = cli(*cards, "--out", out, "--accept-damaged", report=report_path)
    assert again.exit_code == 0, again.output
    before = {f["input"]: f for f in report1["files"]}
    after = {f["input"]: f for f in report2["files"]}
    photos = [i for i, f in before.items() if f["status"] == "ok"]
    assert all(after[i]["status"] == "skipped" and after[i]["done_in_run"] for i in photos)
    for name in ("card1/DCIM/DSC_0001.dng", "card2/DCIM/DSC_0001.dng"):
        key = str(tmp_path / "in" / name)
        assert after[key]["develop"] == before[key]["develop"] and after[key]["develop"]
    key = str(dcim1 / "DSC_0003.jpg")
    assert after[key]["damaged"] == before[key]["damaged"]
    assert after[key]["damaged"].startswith("Corrupt JPEG data")
    assert (out / "card1/DCIM/DSC_0001.xmp").read_text() == "<x:xmpmeta>edited</x:xmpmeta>"
    assert (out / "card1/DCIM/IMG_0002.xmp").read_text() == "<x:xmpmeta>new</x:xmpmeta>"
    assert (out / "card2/DCIM/DSC_0001.xmp").stat().st_mtime_ns == unchanged
    assert input_state(tmp_path / "in") == inputs
    assert not list(out.rglob("*.abpn-tmp-*"))
