"""Checkpoints round-trip exactly, load without arbitrary pickle and are written atomically."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from abpn_cli.model import ABPN
from abpn_cli.training.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    Checkpoint,
    CheckpointError,
    capture_rng,
    is_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    restore_rng,
    save_checkpoint,
    write_run_checkpoint,
)
from tests.conftest import TINY


def _trained_state() -> tuple[ABPN, torch.optim.Adam]:
    torch.manual_seed(0)
    model = ABPN(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 64, 64)
    for _ in range(2):
        opt.zero_grad()
        model(x, 0).result.mean().backward()
        opt.step()
    return model, opt


def _ckpt(model: ABPN, opt: torch.optim.Optimizer, step: int = 2) -> Checkpoint:
    return Checkpoint(
        step=step,
        config=TINY.to_dict(),
        model=model.state_dict(),
        optimizer=opt.state_dict(),
        settings={"out": "/x", "photos": ["/a", "/b"], "pairs": None, "crop": 128},
        rng=capture_rng(),
        best_psnr=31.5,
        metrics={"total": 0.25},
    )


def test_round_trip_gives_identical_weights_and_optimizer(tmp_path: Path) -> None:
    model, opt = _trained_state()
    path = tmp_path / "run" / LAST_NAME
    save_checkpoint(path, _ckpt(model, opt))
    loaded = load_checkpoint(path)
    assert loaded.step == 2 and loaded.best_psnr == 31.5
    assert loaded.settings["photos"] == ["/a", "/b"]

    rebuilt, _ = model_from_checkpoint(path)
    ref = model.state_dict()
    for name, tensor in rebuilt.state_dict().items():
        assert torch.equal(tensor, ref[name]), name

    opt2 = torch.optim.Adam(rebuilt.parameters(), lr=1e-3)
    opt2.load_state_dict(loaded.optimizer)
    for a, b in zip(opt.state.values(), opt2.state.values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temp files left behind


def test_rng_states_restore_exactly(tmp_path: Path) -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    model, opt = _trained_state()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    ckpt = _ckpt(model, opt)
    save_checkpoint(tmp_path / "c.ckpt", ckpt)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    restore_rng(load_checkpoint(tmp_path / "c.ckpt").rng)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_foreign_pickle_and_garbage_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.ckpt"

    class Boom:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    torch.save({"format": "abpn-train-checkpoint", "x": Boom()}, evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(pickle.dumps([1, 2, 3]) + b"garbage")
    assert not is_checkpoint(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not an abpn"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_run_checkpoint_keeps_last_and_best(tmp_path: Path) -> None:
    model, opt = _trained_state()
    write_run_checkpoint(tmp_path, _ckpt(model, opt, step=10), is_best=True)
    write_run_checkpoint(tmp_path, _ckpt(model, opt, step=20), is_best=False)
    assert load_checkpoint(tmp_path / LAST_NAME).step == 20
    assert load_checkpoint(tmp_path / BEST_NAME).step == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST_NAME, LAST_NAME]
    mask = os.umask(0)
    os.umask(mask)
    for name in (BEST_NAME, LAST_NAME):  # not mkstemp's 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask
