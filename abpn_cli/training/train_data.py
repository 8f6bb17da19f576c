"""The trainer's data side: the datasets of a run, its held-out split, the DataLoader.

Sample k of a run is always dataset index k (`StepSampler`), so a run resumed at step s just
starts at s * batch and sees the same samples an uninterrupted run would.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from abpn_cli.training.train_settings import TrainSettings, TrainUsageError, step_bound

LOADER_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ExemplarPairs:
    """Before/after pairs the caller has already decoded and checked (`abpn learn`): float32
    RGB in [0, 1], one size per pair. The trainer crops them as it crops a pairs folder, so
    the exemplars are not written to disk and decoded a second time."""

    images: tuple[tuple[np.ndarray, np.ndarray], ...]


class StepSampler(Sampler[int]):
    """Sample indices start, start+1, ...: sample k of the run is always dataset index k, so
    resuming at step s just starts at s * batch."""

    def __init__(self, start: int, count: int) -> None:
        self.start = start
        self.count = count

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.start + self.count))

    def __len__(self) -> int:
        return self.count


def worker_init(_worker_id: int) -> None:
    """Data workers ignore Ctrl-C: only the main process handles it (saves, then shuts the
    worker down). Torch already runs workers on one thread; OpenCV's count is inherited from
    the parent (see `cv2_single_thread`): calling cv2.setNumThreads here would deadlock."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def cv2_single_thread() -> Iterator[None]:
    """OpenCV on one thread in this process while training.

    Measured here: if OpenCV's thread pool exists when the DataLoader forks, the child inherits
    a pool whose threads are gone and `cv2.setNumThreads` in the child joins them forever (the
    worker hangs, the trainer waits). With the parent at 1 thread there is no pool to inherit,
    and the worker's OpenCV work stays on one core, leaving the other cores to the model.
    """
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


VAL_SEED_OFFSET = 0x7A1  # validation crops/defects never share a seed with training ones
HOLDOUT_MIN_SOURCES = 8  # with fewer photos/pairs, validation reuses them (new crops, defects)


def split_holdout(items: list[Any], seed: int) -> tuple[list[Any], list[Any]]:
    """(train, val) sources: ~10 % held out (seeded) when there are enough of them."""
    if len(items) < HOLDOUT_MIN_SOURCES:
        return items, items
    rng = np.random.default_rng([seed, VAL_SEED_OFFSET])
    held = set(rng.choice(len(items), size=max(1, len(items) // 10), replace=False).tolist())
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in sorted(held)]


def build_datasets(
    settings: TrainSettings, exemplars: ExemplarPairs | None = None
) -> tuple[Dataset, tuple[Tensor, Tensor, Tensor]]:
    """(training dataset where item k is sample k of the run, fixed validation batch), from
    `exemplars` when given, else from the settings' pairs folder or photo folders."""
    try:
        make = _dataset_factory(settings, exemplars)
        train_src, val_src = split_holdout(make.sources, settings.seed)
        train_ds = make(train_src, step_bound(settings) * settings.batch, settings.seed)
        val_ds = make(val_src, settings.val_size, settings.seed + VAL_SEED_OFFSET)
    except (ValueError, FileNotFoundError) as exc:  # nothing usable: bad layout, no pairs, ...
        if isinstance(exc, TrainUsageError):
            raise
        raise TrainUsageError(f"training data: {exc}") from exc
    samples = [val_ds[i] for i in range(settings.val_size)]
    val_batch = tuple(torch.stack([s[j] for s in samples]) for j in range(3))
    return train_ds, val_batch  # type: ignore[return-value]


@dataclass(frozen=True)
class _Factory:
    """The run's sources and how a dataset of `length` crops with `seed` is made from some."""

    sources: list[Any]
    build: Any  # (sources, length, seed) -> Dataset

    def __call__(self, sources: list[Any], length: int, seed: int) -> Dataset:
        return self.build(sources, length, seed)


def _dataset_factory(settings: TrainSettings, exemplars: ExemplarPairs | None) -> _Factory:
    from abpn_cli.training import crops, data

    crop = settings.crop
    if exemplars is not None:
        return _Factory(
            list(exemplars.images),
            lambda src, n, seed: crops.PairCropDataset.from_images(src, crop, n, seed),
        )
    if settings.pairs is not None:
        return _Factory(
            data.find_pairs(Path(settings.pairs)),
            lambda src, n, seed: crops.PairCropDataset(
                src, crop=crop, length=n, seed=seed, max_side=settings.max_side
            ),
        )
    photos = data.find_photos([Path(p) for p in settings.photos])
    if not photos:
        raise TrainUsageError(
            "no training data: no images in " + ", ".join(map(str, settings.photos))
        )
    long_side = (max(crop, settings.max_side // 2), settings.max_side)
    return _Factory(
        photos,
        lambda src, n, seed: crops.SyntheticCropDataset(
            src, crop=crop, length=n, seed=seed, long_side=long_side
        ),
    )


def make_loader(dataset: Dataset, settings: TrainSettings, start_step: int) -> DataLoader:
    """The batches from `start_step` to the end of the run, in the order every run sees them."""
    remaining = (step_bound(settings) - start_step) * settings.batch
    sampler = StepSampler(start_step * settings.batch, remaining)
    workers = settings.num_workers
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs = {
            "worker_init_fn": worker_init,
            "prefetch_factor": 2,
            # fork: the dataset is inherited, not pickled; start is instant. Torch resets its
            # own thread pool in forked children, and the workers never touch autograd.
            "multiprocessing_context": "fork" if os.name == "posix" else None,
            "generator": torch.Generator().manual_seed(settings.seed + start_step),
            "timeout": LOADER_TIMEOUT_S,  # a stuck worker becomes an error, not a silent hang
        }
    return DataLoader(
        dataset,
        batch_size=settings.batch,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        **kwargs,
    )
