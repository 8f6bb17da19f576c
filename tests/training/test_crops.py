"""Crop datasets: shapes, locality, determinism, memory budget, crops where the edit is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from abpn_cli.training.crops import CropSample, PairCropDataset, SyntheticCropDataset, dihedral
from abpn_cli.training.data import find_pairs
from tests.factories import gradient_photo, write_rgb


def test_dihedral_group() -> None:
    x = np.arange(12).reshape(3, 4)
    outs = {dihedral(x, c).tobytes() + bytes(dihedral(x, c).shape) for c in range(8)}
    assert len(outs) == 8 and np.array_equal(dihedral(x, 0), x)


def test_synthetic_dataset_shapes_locality_determinism(photo_files: list[Path]) -> None:
    ds = SyntheticCropDataset(photo_files, crop=128, length=6, seed=3, long_side=(150, 300))
    assert len(ds) == 6 and len(ds.images) == 2
    assert all(min(im.shape[:2]) >= 128 and im.dtype == np.uint8 for im in ds.images)
    sample = ds[1]
    assert isinstance(sample, CropSample)
    assert sample.before.shape == sample.after.shape == (3, 128, 128)
    assert sample.region.shape == (1, 128, 128)
    assert all(t.dtype == torch.float32 for t in sample)
    assert float(sample.before.min()) >= 0 and float(sample.before.max()) <= 1
    outside = sample.region[0] == 0
    assert torch.equal(sample.before[:, outside], sample.after[:, outside])
    assert not torch.equal(sample.before, sample.after)

    again = SyntheticCropDataset(photo_files, crop=128, length=6, seed=3, long_side=(150, 300))
    assert all(torch.equal(x, y) for x, y in zip(ds[4], again[4], strict=True))
    again.set_epoch(1)
    assert not torch.equal(ds[4].after, again[4].after)
    with pytest.raises(IndexError):
        ds[6]

    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.before.shape == (3, 3, 128, 128) and batch.region.shape == (3, 1, 128, 128)


def test_synthetic_dataset_memory_budget(photo_files: list[Path]) -> None:
    roomy = SyntheticCropDataset(photo_files, crop=64, length=2, long_side=(300, 300))
    tight = SyntheticCropDataset(photo_files, crop=64, length=2, long_side=(300, 300), max_mb=0.15)
    assert tight.nbytes <= 0.15 * 2**20 < roomy.nbytes
    assert all(min(im.shape[:2]) >= 64 for im in tight.images)
    with pytest.warns(UserWarning, match="left out"):
        tiny = SyntheticCropDataset(photo_files, crop=128, length=2, max_mb=0.1)
    assert len(tiny.images) == 1


def make_local_edit_pair(root: Path) -> tuple[Path, Path]:
    """A 200x1000 pair whose only edit is a 60x60 patch near the right end."""
    after = gradient_photo(200, 1000, 5)
    before = after.copy()
    before[100:160, 880:940] = (before[100:160, 880:940] * 0.7).astype(np.uint8)
    return write_rgb(root / "before" / "e.png", before), write_rgb(root / "after" / "e.png", after)


def hit_rate(ds: PairCropDataset, n: int = 60) -> float:
    return float(np.mean([float(ds[i].region.max()) > 0.5 for i in range(n)]))


def test_pair_dataset_prefers_changed_areas(tmp_path: Path) -> None:
    pair = make_local_edit_pair(tmp_path)
    assert find_pairs(tmp_path) == [pair]
    common = dict(crop=128, length=60, seed=0, scale=(1.0, 1.0))
    focused = PairCropDataset([pair], uniform_fraction=0.3, **common)
    anywhere = PairCropDataset([pair], uniform_fraction=1.0, **common)
    assert focused.images[0][0].dtype == np.uint16
    s = focused[0]
    assert s.before.shape == s.after.shape == (3, 128, 128) and s.region.shape == (1, 128, 128)
    assert all(t.dtype == torch.float32 for t in s)
    rate, base = hit_rate(focused), hit_rate(anywhere)
    assert rate >= 0.55 and base <= 0.35 and rate > base + 0.3, (rate, base)
    # where the region is empty, before and after agree (within the threshold)
    for i in range(10):
        smp = focused[i]
        quiet = smp.region[0] == 0
        assert float((smp.before - smp.after).abs()[:, quiet].amax()) <= 0.02
