"""`abpn dust-profile` then `abpn retouch --dust-profile`: the sensor's measured shadows are
divided out of every frame of its shape before the model runs, the report says how many, a
new profile redoes the batch, and a bad profile stops the run before anything is written."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from abpn_cli.cli import app
from abpn_cli.engine.dustprofile import load_profile
from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE
from abpn_cli.training.dust import add_dust
from tests.batch.conftest import outputs
from tests.engine.test_dustprofile import DEFECTS, H, W
from tests.factories import grey_card, textured, to_u8, write_rgb
from tests.imaging.helpers import exif_block, write_jpeg


def _profile_cmd(*args: str | Path):
    return CliRunner().invoke(app, ["dust-profile", *map(str, args)], catch_exceptions=False)


@pytest.fixture
def sensor(tmp_path: Path) -> Path:
    """A profile measured from a dusty grey card, the way a photographer would."""
    card = add_dust(grey_card(H, W), np.random.default_rng(0), defects=DEFECTS).dusty
    ref = write_rgb(tmp_path / "ref" / "card.png", to_u8(card))
    result = _profile_cmd(ref, "--out", tmp_path / "sensor.npz")
    assert result.exit_code == EXIT_OK, result.output
    assert "3 dust spots from 1 frame(s)" in result.output
    return tmp_path / "sensor.npz"


def _shoot(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One textured frame with the sensor's dust: (clean, dusty, footprint)."""
    clean = textured(H, W, seed=4)
    d = add_dust(clean, np.random.default_rng(1), defects=DEFECTS)
    write_rgb(root / "frame.png", to_u8(d.dusty))
    return to_u8(clean), to_u8(d.dusty), (d.transmittance < 0.999).any(axis=2)


def test_the_profile_is_divided_out_and_reported(tmp_path: Path, cli, sensor) -> None:
    clean, dusty, foot = _shoot(tmp_path / "in")
    out = tmp_path / "out"
    args = (tmp_path / "in", "--out", out, "--strength", "0", "--dust-profile", sensor)
    result, report = cli(*args, report=tmp_path / "r.json")
    assert result.exit_code == EXIT_OK, result.output
    entry = report["files"][0]
    assert entry["profile"] == {"spots": 3} and entry["source_copied"] is False
    assert report["settings"]["dust_profile"] == str(sensor.absolute())
    assert "(3 sensor dust spots divided out)" not in result.output  # seconds come first
    assert "s, 3 sensor dust spots divided out)" in result.output
    got = cv2.imread(str(out / "frame.png"))[:, :, ::-1]
    err = lambda a: np.square(a[foot].astype(float) - clean[foot]).sum()  # noqa: E731
    assert err(got) < 0.2 * err(dusty)  # >= 80 % of the dust error gone, on texture
    assert np.abs(got[~foot].astype(int) - dusty[~foot]).mean() < 0.2  # outside: <= 0.2/255
    page = CliRunner().invoke(app, ["review", str(out)], catch_exceptions=False)
    assert page.exit_code == EXIT_OK, page.output
    assert "3 sensor dust spots divided out" in (out / "_review" / "index.html").read_text()

    _, report = cli(*args, report=tmp_path / "r.json")
    assert report["files"][0]["status"] == "skipped"  # same profile: done
    one_spot = add_dust(grey_card(H, W), np.random.default_rng(0), defects=DEFECTS[:1]).dusty
    write_rgb(tmp_path / "ref" / "card.png", to_u8(one_spot))
    assert _profile_cmd(tmp_path / "ref", "-o", sensor).exit_code == EXIT_OK
    _, report = cli(*args, report=tmp_path / "r.json")
    assert report["files"][0]["status"] == "ok" and report["files"][0]["profile"] == {"spots": 1}


def test_a_frame_of_another_shape_is_left_to_the_model(tmp_path: Path, cli, sensor) -> None:
    write_rgb(tmp_path / "in" / "portrait.png", to_u8(textured(W, H, seed=2)))
    args = (tmp_path / "in", "--out", tmp_path / "out", "--dust-profile", sensor)
    result, report = cli(*args, report=tmp_path / "r.json")
    assert result.exit_code == EXIT_OK, result.output
    assert report["files"][0]["profile"] == {"skipped": "frame 400x600 is not the profile's 3:2"}


def test_a_frame_shot_wide_open_says_the_reference_was_stopped_down(tmp_path: Path, cli) -> None:
    reference = add_dust(grey_card(H, W), np.random.default_rng(0), defects=DEFECTS).dusty
    write_jpeg(
        tmp_path / "ref.jpg", to_u8(reference), exif=exif_block(f_number=(16, 1)), quality=98
    )
    assert _profile_cmd(tmp_path / "ref.jpg", "-o", tmp_path / "s.npz").exit_code == EXIT_OK
    frame = add_dust(textured(H, W, seed=4), np.random.default_rng(1), defects=DEFECTS).dusty
    (tmp_path / "in").mkdir()
    write_jpeg(tmp_path / "in" / "f.jpg", to_u8(frame), exif=exif_block(f_number=(28, 10)))
    args = (tmp_path / "in", "--out", tmp_path / "out", "--dust-profile", tmp_path / "s.npz")
    _, report = cli(*args, report=tmp_path / "r.json")
    profile = report["files"][0]["profile"]
    assert profile["spots"] >= 1
    assert profile["note"].startswith("reference at f/16, this frame at f/2.8 (5.0 stops)")


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("damaged", "cannot read dust profile"),
        ("text", "is not a dust profile (write one with dust-profile)"),
        ("missing", "is not a file"),
    ],
)
def test_a_bad_profile_stops_the_run_before_anything_is_written(
    tmp_path: Path, cli, bad, says
) -> None:
    _shoot(tmp_path / "in")
    profile = tmp_path / "sensor.npz"
    if bad != "missing":
        profile.write_bytes(b"PK\x03\x04 not really" if bad == "damaged" else b"notes\n")
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--dust-profile", profile)
    assert result.exit_code == EXIT_USAGE
    assert says in " ".join(result.output.split()) and "allow_pickle" not in result.output
    assert not (tmp_path / "out").exists() or outputs(tmp_path / "out") == []


def test_a_textured_reference_is_refused_in_words(tmp_path: Path) -> None:
    ref = write_rgb(tmp_path / "scene.png", to_u8(textured(H, W, seed=1)))
    result = _profile_cmd(ref, "--out", tmp_path / "sensor.npz")
    assert result.exit_code == EXIT_USAGE and "not flat" in result.output
    assert not (tmp_path / "sensor.npz").exists()


def test_a_damaged_reference_is_named_without_retouchs_hint(tmp_path: Path) -> None:
    ref = write_jpeg(tmp_path / "card.jpg", to_u8(grey_card(H, W)))
    ref.write_bytes(ref.read_bytes()[:3000])  # truncated, as a card pulled too early leaves it
    result = _profile_cmd(ref, "--out", tmp_path / "sensor.npz")
    assert result.exit_code == EXIT_USAGE
    assert "cannot use" in result.output and "truncated JPEG" in result.output
    assert "--accept-damaged" not in result.output and not (tmp_path / "sensor.npz").exists()


def _learn_shoot(root: Path, frames: int = 4) -> None:
    """A handheld shoot: the scene moves from frame to frame, the sensor's dust stays."""
    for i in range(frames):
        clean = np.ascontiguousarray(np.roll(textured(H, W, seed=i), 71 * i, axis=1))
        d = add_dust(clean, np.random.default_rng(i), defects=DEFECTS)
        write_rgb(root / f"frame{i}.png", to_u8(d.dusty))


def test_learn_writes_a_profile_of_the_spots_the_shipped_model_keeps_finding(tmp_path) -> None:
    _learn_shoot(tmp_path / "shoot")
    (tmp_path / "shoot" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    result = _profile_cmd(tmp_path / "shoot", "--learn", "--out", tmp_path / "p.npz")
    assert result.exit_code == EXIT_OK, result.output
    assert "skipped" in result.output and "broken.jpg" in result.output
    profile = load_profile(tmp_path / "p.npz")
    assert profile.frames == 4 and len(profile.spots) >= 1
    for s in profile.spots:  # each learned spot sits on one of the sensor's defects
        assert any(
            s.box[0] * W <= d.x <= s.box[2] * W and s.box[1] * H <= d.y <= s.box[3] * H
            for d in DEFECTS
        ), s.box


@pytest.mark.parametrize(
    ("extra", "code", "says"),
    [
        (("--model", "nope.pt"), EXIT_ENVIRONMENT, "nope.pt"),
        (("--sensitivity", "2"), EXIT_USAGE, "sensitivity"),
    ],
)
def test_learn_refuses_bad_options_and_writes_nothing(tmp_path, extra, code, says) -> None:
    _learn_shoot(tmp_path / "shoot", frames=2)
    out = tmp_path / "p.npz"
    extra = tuple(str(tmp_path / a) if a.endswith(".pt") else a for a in extra)
    result = _profile_cmd(tmp_path / "shoot", "--learn", *extra, "--out", out)
    assert result.exit_code == code and says in result.output, result.output
    assert not out.exists()


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("where", ["the reference itself", "a folder", "a photo named .npz"])
def test_an_out_that_is_not_a_profile_path_is_refused_and_the_photo_kept(
    tmp_path: Path, learn: bool, where: str
) -> None:
    name = "card.npz" if where == "a photo named .npz" else "card.png"  # bytes decide, not names
    ref = write_rgb(tmp_path / "card.png", to_u8(grey_card(H, W))).rename(tmp_path / name)
    before = ref.read_bytes()
    out = tmp_path if where == "a folder" else ref
    flags = ("--learn",) if learn else ()
    result = _profile_cmd(ref, *flags, "--out", out)
    assert result.exit_code == EXIT_USAGE, result.output
    assert any(w in result.output for w in (".npz", "folder", "one of the frames read"))
    assert ref.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_reference_named_twice_is_one_frame(tmp_path: Path) -> None:
    card = add_dust(grey_card(H, W), np.random.default_rng(0), defects=DEFECTS).dusty
    ref = write_rgb(tmp_path / "card.png", to_u8(card))
    result = _profile_cmd(ref, tmp_path / "." / "card.png", "--out", tmp_path / "p.npz")
    assert result.exit_code == EXIT_OK and "from 1 frame(s)" in result.output, result.output
