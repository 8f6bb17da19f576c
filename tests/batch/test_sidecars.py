"""batch.sidecars: a sidecar's copy is written only when absent or different, atomically,
and never over an input."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from abpn_cli.batch.errors import UnsafeWriteError
from abpn_cli.batch.plan import Job
from abpn_cli.batch.sidecars import sync_sidecar


def job_with_sidecar(tmp_path: Path) -> Job:
    src, car = tmp_path / "in" / "x.dng", tmp_path / "in" / "x.xmp"
    src.parent.mkdir()
    src.write_bytes(b"raw")
    car.write_bytes(b"<x:xmpmeta>1</x:xmpmeta>")
    out = tmp_path / "out" / "x.tif"
    return Job(
        0, src, "x.dng", PurePosixPath("x.tif"), out, "x.tif", "tiff",
        sidecar=car, sidecar_out=out.with_suffix(".xmp"),
    )  # fmt: skip


def test_written_when_absent_or_different_and_left_alone_when_equal(tmp_path: Path) -> None:
    job = job_with_sidecar(tmp_path)
    assert job.sidecar is not None and job.sidecar_out is not None
    assert sync_sidecar(job) and job.sidecar_out.read_bytes() == job.sidecar.read_bytes()
    assert not sync_sidecar(job)
    job.sidecar.write_bytes(b"<x:xmpmeta>2</x:xmpmeta>")
    assert sync_sidecar(job) and job.sidecar_out.read_bytes() == b"<x:xmpmeta>2</x:xmpmeta>"


def test_a_refused_destination_leaves_no_file(tmp_path: Path) -> None:
    job = job_with_sidecar(tmp_path)

    def refuse(dest: Path) -> None:
        raise UnsafeWriteError(f"refusing to overwrite the input {dest}")

    with pytest.raises(UnsafeWriteError):
        sync_sidecar(job, refuse)
    assert list((tmp_path / "out").iterdir()) == []
    assert job.sidecar is not None and job.sidecar.read_bytes() == b"<x:xmpmeta>1</x:xmpmeta>"
