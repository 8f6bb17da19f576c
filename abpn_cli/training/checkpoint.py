"""Training checkpoints: everything needed to resume a run exactly, and nothing executable.

A checkpoint is a plain dict of tensors and builtin types written with torch.save and read
back with torch.load(weights_only=True), so loading a checkpoint from someone else cannot run
code (no arbitrary pickle). RNG states are stored as tensors / tuples of ints for that reason.
Writes are atomic (temp file in the same folder + os.replace): a Ctrl-C or a full disk during
a save never leaves a truncated `last.ckpt` behind.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from abpn_cli.batch.fsutil import atomic_copy, atomic_write
from abpn_cli.engine.errors import EngineError
from abpn_cli.engine.modelfile import inspect_model_file
from abpn_cli.model import ABPN, ABPNConfig

CHECKPOINT_FORMAT = "abpn-train-checkpoint"
CHECKPOINT_VERSION = 1
LAST_NAME = "last.ckpt"
BEST_NAME = "best.ckpt"


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable or not one of ours."""


@dataclass
class Checkpoint:
    """One training state. `step` counts completed optimizer steps."""

    step: int
    config: dict[str, Any]
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    settings: dict[str, Any]
    discriminator: dict[str, Tensor] | None = None
    disc_optimizer: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=dict)
    best_psnr: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def model_config(self) -> ABPNConfig:
        return ABPNConfig.from_dict(self.config)


def capture_rng() -> dict[str, Any]:
    """Global RNG states as weights_only-loadable values (tensors, ints, tuples)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), cached),
        "python": (version, tuple(py_state), gauss),
    }


def restore_rng(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "python" in state:
        version, py_state, gauss = state["python"]
        random.setstate((version, tuple(py_state), gauss))


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Atomically write `ckpt` to `path`."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **ckpt.__dict__}
    atomic_write(path, lambda temp: torch.save(payload, temp))


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint with weights_only=True; CheckpointError if it is not one."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # foreign pickles make torch warn before it refuses
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, foreign pickle, a model file, ...
        raise CheckpointError(_unreadable(path, exc)) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an abpn training checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint version {payload.get('version')}")
    known = Checkpoint.__dataclass_fields__
    return Checkpoint(**{k: v for k, v in payload.items() if k in known})


def _unreadable(path: Path, exc: Exception) -> str:
    """Why `path` is no checkpoint, in one line: torch's own refusal of a foreign pickle is a
    paragraph that suggests loading it unsafely, which is never the answer here."""
    try:
        inspect_model_file(path)
    except EngineError:
        pass
    else:
        return f"{path} is an exported model file, not a training checkpoint (use it as --model)"
    if "GLOBAL" in str(exc):  # torch's weights-only unpickler met a class or function
        why = "it holds Python objects other than tensors, so it is no abpn checkpoint"
    else:
        why = f"damaged, or another kind of file ({type(exc).__name__})"
    return f"cannot read checkpoint {path}: {why}"


def is_checkpoint(path: Path) -> bool:
    """Cheap check used to tell a checkpoint from an exported model file."""
    try:
        load_checkpoint(path)
    except CheckpointError:
        return False
    return True


def write_run_checkpoint(run_dir: Path, ckpt: Checkpoint, is_best: bool) -> Path:
    """Keep `last.ckpt` (always) and `best.ckpt` (best validation PSNR so far)."""
    last = run_dir / LAST_NAME
    save_checkpoint(last, ckpt)
    if is_best:
        atomic_copy(last, run_dir / BEST_NAME)
    return last


def model_from_checkpoint(path: Path) -> tuple[ABPN, Checkpoint]:
    """Rebuild the network stored in a checkpoint (for fine-tuning or export)."""
    ckpt = load_checkpoint(path)
    model = ABPN(ckpt.model_config())
    model.load_state_dict(ckpt.model)
    return model, ckpt
