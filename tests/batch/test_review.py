"""`abpn review`: an offline page whose every picture exists, failures listed, seen by Chromium."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from abpn_cli.cli import app
from tests.batch.conftest import write_bad_files
from tests.factories import make_photo
from tests.imaging.test_damage import zeroed


@pytest.fixture
def reviewed(tmp_path, cli):
    for i in range(3):
        make_photo(tmp_path / "in" / f"p{i}.jpg", size=(400, 300), seed=i)
    write_bad_files(tmp_path / "in")
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out")
    assert result.exit_code == 1  # the bad files fail
    review = CliRunner().invoke(app, ["review", str(tmp_path / "out")])
    assert review.exit_code == 0, review.output
    return tmp_path / "out" / "_review" / "index.html"


def test_the_page_links_only_files_that_exist_and_lists_failures(reviewed):
    page = reviewed.read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) >= 3 * 2  # before and after of each retouched file
    assert all((reviewed.parent / s).resolve().is_file() for s in sources), sources
    assert "http://" not in page and "https://" not in page  # offline: nothing fetched
    assert page.count('class="file"') == 3
    for name in ("corrupt.jpg", "empty.jpg", "notes.jpg"):
        assert name in page


def test_a_file_taken_with_accept_damaged_gets_its_card(tmp_path, cli):
    good = make_photo(tmp_path / "in" / "ok.jpg", size=(400, 300), seed=1)
    (tmp_path / "in" / "damaged.jpg").write_bytes(zeroed(good.read_bytes()))
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--accept-damaged")
    assert result.exit_code == 0, result.output
    assert "damaged.jpg (" in result.output and ", damaged input)" in result.output
    review = CliRunner().invoke(app, ["review", str(tmp_path / "out")])
    assert review.exit_code == 0 and "no pictures" not in review.output, review.output
    page = (tmp_path / "out" / "_review" / "index.html").read_text()
    assert page.count('class="file"') == 2 and "damaged.jpg" in page
    assert page.count("damaged input, taken with --accept-damaged") == 1


def test_review_without_a_batch_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["review", str(tmp_path)])
    assert result.exit_code == 2 and "no report" in result.output


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_chromium_renders_the_page_with_its_pictures(reviewed, tmp_path):
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            reviewed.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    background = np.array([0x1D, 0x1F, 0x21])
    painted = (np.abs(img - background).sum(axis=2) > 30).mean()
    assert painted > 0.05  # text and photos, not a blank page
    assert img.std() > 20
    assert Path(shot).stat().st_size > 20_000
