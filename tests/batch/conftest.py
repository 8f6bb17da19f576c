"""Helpers for batch tests: small generated photos, a CLI runner, file hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abpn_cli.cli import app
from tests.factories import make_photo


def write_bad_files(folder: Path) -> dict[str, Path]:
    """The classic broken inputs of a real shoot folder."""
    folder.mkdir(parents=True, exist_ok=True)
    good_jpeg = make_photo(folder / "tmp_source.jpg", seed=9).read_bytes()
    (folder / "tmp_source.jpg").unlink()
    rng = np.random.default_rng(3)
    corrupt = folder / "corrupt.jpg"  # valid SOI/APP0/DQT header, garbage after
    corrupt.write_bytes(good_jpeg[:300] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    tif = make_photo(folder / "truncated.tif", seed=4)
    data = tif.read_bytes()
    tif.write_bytes(data[: len(data) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not a photo\n")
    return {
        "corrupt": corrupt,
        "truncated": tif,
        "empty": folder / "empty.jpg",
        "text": folder / "notes.jpg",
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


DUST_MAP = "_qa/dust-map.png"  # the batch-level QA picture (tests/batch/test_dustmap.py)


def outputs(out: Path) -> list[str]:
    """Final-named per-file outputs under OUT: not the .abpn state folder, not the dust map."""
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file()
        and ".abpn" not in p.parts
        and not p.name.startswith(".")
        and str(p.relative_to(out)) != DUST_MAP
    )


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".abpn-tmp-" in p.name]


@pytest.fixture
def cli(tiny_model_file):
    """Run `abpn retouch ... --model tiny --device cpu` in-process; returns (result, report)."""
    runner = CliRunner()

    def run(*args: str | Path, report: Path | None = None):
        argv = ["retouch", *map(str, args), "--model", str(tiny_model_file), "--device", "cpu"]
        if report is not None:
            argv += ["--report", str(report)]
        result = runner.invoke(app, argv, catch_exceptions=False)
        data = json.loads(report.read_text()) if report is not None and report.exists() else None
        return result, data

    return run
