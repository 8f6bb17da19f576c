"""abpn eval / make-evalset: scoring, report schema and exit codes (tiny, fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from abpn_cli.cli import app
from abpn_cli.engine import ModelCard, RetouchOptions, load_model, save_model_file
from abpn_cli.training import evaluate as ev
from abpn_cli.training.eval_baselines import make_baseline
from tests.conftest import make_tiny_model
from tests.factories import EVAL_SIZE, eval_clean, write_eval_pairs, write_rgb

SIZE = EVAL_SIZE


@pytest.fixture(scope="module")
def silent_model_file(tmp_path_factory) -> Path:
    """A tiny model whose mask is ~0 everywhere, so skip_untouched copies every tile."""
    path = tmp_path_factory.mktemp("models") / "silent.pt"
    save_model_file(
        make_tiny_model(mask_bias=-30.0),
        path,
        ModelCard(kind="test", details={"note": "mask forced ~0"}),
    )
    return path


def test_identity_baseline_scores_the_input(tmp_path: Path) -> None:
    pairs = ev.list_pairs(write_eval_pairs(tmp_path / "set"))
    files = ev.evaluate(pairs, {"id": make_baseline("identity")})["id"]
    assert [f.name for f in files] == ["p0", "p1"]
    for f in files:
        assert f.psnr_out == f.psnr_in and f.ssim_out == f.ssim_in
        assert f.locality_255 == 0.0
        assert math.isfinite(f.psnr_in) and f.levels is None
        assert (f.width, f.height) == (SIZE, SIZE)


def test_model_with_silent_mask_returns_input_exactly(tmp_path: Path, silent_model_file) -> None:
    pairs = ev.list_pairs(write_eval_pairs(tmp_path / "set"))
    model = load_model(silent_model_file, "cpu")
    method = ev.model_method(model, RetouchOptions(levels=1, skip_untouched=True))
    out = method(ev.load_eval_pair(pairs[0]).before)
    assert np.array_equal(out.pixels, ev.load_eval_pair(pairs[0]).before)
    files = ev.evaluate(pairs, {"model": method})["model"]
    for f in files:
        assert f.psnr_out == f.psnr_in and f.locality_255 == 0.0 and f.levels == 1


def test_region_is_derived_from_the_difference_when_missing(tmp_path: Path) -> None:
    with_map = ev.list_pairs(write_eval_pairs(tmp_path / "a", n=1))
    without = ev.list_pairs(write_eval_pairs(tmp_path / "b", n=1, with_region=False))
    assert with_map[0].region is not None and without[0].region is None
    derived = ev.load_eval_pair(without[0]).region
    given = ev.load_eval_pair(with_map[0]).region
    # the derived region covers the disc and is ~0 far from it
    assert derived[given > 0.5].min() > 0.5 and derived[given == 0].mean() < 0.05


def test_sixteen_bit_before_is_scored_at_full_precision(tmp_path: Path) -> None:
    root = write_eval_pairs(tmp_path / "set", n=1)
    b8 = cv2.imread(str(root / "before" / "p0.png"), cv2.IMREAD_UNCHANGED)
    (root / "before" / "p0.png").unlink()
    write_rgb(root / "before" / "p0.png", (b8[:, :, ::-1].astype(np.uint16) * 257))
    lp = ev.load_eval_pair(ev.list_pairs(root)[0])
    assert lp.before.dtype == np.uint16
    f = ev.evaluate(ev.list_pairs(root), {"id": make_baseline("identity")})["id"][0]
    assert f.psnr_out == f.psnr_in and f.locality_255 == 0.0


class CliOut(NamedTuple):
    exit_code: int
    output: str  # whitespace collapsed: rich wraps long lines at 80 columns in tests


def _cli(*args: str | Path) -> CliOut:
    result = CliRunner().invoke(app, [*map(str, args)], catch_exceptions=False)
    return CliOut(result.exit_code, " ".join(result.output.split()))


def test_cli_eval_writes_report_with_schema(tmp_path: Path, tiny_model_file: Path) -> None:
    root = write_eval_pairs(tmp_path / "set")
    report = tmp_path / "out" / "report.json"
    args = ("eval", "--pairs", root, "--model", tiny_model_file, "--device", "cpu")
    result = _cli(*args, "--levels", "1", "--report", report)
    assert result.exit_code == 0, result.output
    assert "mean of 2" in result.output
    doc = json.loads(report.read_text())
    assert set(doc) == {"abpn_version", "model", "settings", "files", "summary"}
    assert set(doc["model"]) == {"path", "sha256"} and len(doc["model"]["sha256"]) == 64
    assert doc["settings"]["levels"] == 1 and doc["settings"]["method"] == "model"
    keys = {"name", "width", "height", "levels", "psnr_in", "psnr_out", "ssim_in", "ssim_out"}
    for f in doc["files"]:
        assert keys | {"locality_255", "seconds"} == set(f)
        assert f["levels"] == 1 and f["width"] == SIZE
    assert doc["summary"]["count"] == 2
    for k in ("psnr_in", "psnr_out", "ssim_in", "ssim_out", "locality_255", "seconds"):
        assert isinstance(doc["summary"][k], float)


def test_cli_eval_baseline_needs_no_model(tmp_path: Path) -> None:
    root = write_eval_pairs(tmp_path / "set", n=1, size=256)
    report = tmp_path / "r.json"
    missing = tmp_path / "nope.pt"
    result = _cli("eval", "--pairs", root, "--baseline", "bilateral", "--model", missing,
                  "--report", report)  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert doc["model"] is None and doc["settings"]["method"] == "bilateral"
    assert doc["settings"]["baseline_params"] == {"sigma_space_1024": 2.0, "sigma_color": 0.05}
    assert doc["files"][0]["locality_255"] > 0


def test_cli_eval_exit_codes(tmp_path: Path, tiny_model_file: Path) -> None:
    root = write_eval_pairs(tmp_path / "set", n=1)
    empty = tmp_path / "empty"
    (empty / "before").mkdir(parents=True)
    (empty / "after").mkdir()
    r = _cli("eval", "--pairs", empty, "--model", tiny_model_file)
    assert r.exit_code == 2 and "no before/after pairs" in r.output
    r = _cli("eval", "--pairs", tmp_path / "absent", "--model", tiny_model_file)
    assert r.exit_code == 2 and "missing folder" in r.output
    r = _cli("eval", "--pairs", root, "--model", tmp_path / "missing.pt", "--device", "cpu")
    assert r.exit_code == 4 and "not found" in r.output
    r = _cli("eval", "--pairs", root, "--baseline", "magic")
    assert r.exit_code == 2
    r = _cli("eval", "--pairs", root, "--levels", "x", "--model", tiny_model_file)
    assert r.exit_code == 2


def test_cli_eval_bad_pair_is_a_usage_error(tmp_path: Path) -> None:
    root = write_eval_pairs(tmp_path / "set", n=1)
    write_rgb(root / "after" / "p0.png", eval_clean(0, 64))  # size mismatch with before/p0.png
    r = _cli("eval", "--pairs", root, "--baseline", "identity")
    assert r.exit_code == 2 and "size mismatch" in r.output


def test_cli_make_evalset_is_deterministic(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(2):
        write_rgb(photos / f"photo{i}.png", eval_clean(10 + i))
    outs = [tmp_path / "e1", tmp_path / "e2"]
    for out in outs:
        r = _cli("make-evalset", "--photos", photos, "--out", out, "--size", "128", "--seed", "3")
        assert r.exit_code == 0, r.output
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) == 2 * 3 + 1  # before/after/region per photo + manifest.json
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes()
    assert len(ev.list_pairs(outs[0])) == 2
    r = _cli("make-evalset", "--photos", tmp_path / "none", "--out", tmp_path / "e3")
    assert r.exit_code == 2
