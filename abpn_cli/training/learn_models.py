"""The networks `abpn learn` handles: the base (found and loaded), the learned one set to its
thumbnail, in-memory engine copies of both, and the held-out check that scores them.

Held-out check: with enough pairs the last one is kept out of training, and the engine's
output on it (whole image at a 1024-px long side, exactly `abpn retouch`'s code path) is
scored against its `after` before and after learning, next to doing nothing."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from abpn_cli.model import ABPN
from abpn_cli.training.data import load_rgb_uniform
from abpn_cli.training.learn_errors import BaseModelError
from abpn_cli.training.pair_checks import PairInfo

HOLDOUT_MIN_PAIRS = 3
HELDOUT_SIDE = 1024


@dataclass
class HeldOut:
    """PSNR (dB) of the held-out pair's after vs: before (nothing), base model, learned."""

    pair: str
    side: int
    psnr_nothing: float
    psnr_base: float
    psnr_learned: float | None = None


def resolve_base(base: Path | None) -> Path:
    """The base model's file: `base`, or the shipped default; BaseModelError if missing."""
    from abpn_cli.engine import default_model_path

    path = Path(base) if base is not None else default_model_path()
    if not path.is_file():
        hint = "" if base is not None else " (the shipped default model; or pass --from MODEL)"
        raise BaseModelError(f"base model not found: {path}{hint}")
    return path


@dataclass(frozen=True)
class BaseModel:
    """The base network, eager, and whether it is a dust model (its card's kind): a dust
    model's mask means "dust here", so it is opened up before a look is learned."""

    model: ABPN
    dust: bool


def load_base(path: Path) -> BaseModel:
    """The base network (model file or training checkpoint), its header read once."""
    from abpn_cli.engine import EngineError, ModelCard, load_eager
    from abpn_cli.training.checkpoint import is_checkpoint, model_from_checkpoint

    try:
        if is_checkpoint(path):
            return BaseModel(model_from_checkpoint(path)[0], dust=False)
        model, meta = load_eager(path)
    except (EngineError, RuntimeError, KeyError) as exc:
        raise BaseModelError(f"cannot load base model {path}: {exc}") from exc
    try:
        kind = ModelCard.from_meta(meta).kind
    except ValueError:  # a card of a kind this version does not know: not a dust model
        kind = None
    return BaseModel(model, dust=kind == "train-dust")


def open_for_look(base: ABPN, befores: list[np.ndarray], thumb: int) -> ABPN:
    """A copy of a dust model made undecided, to learn a look from: the mask head's bias moved
    so the mask's median over the exemplars' `thumb`-px thumbnails is 0.5, the retouching
    head zeroed (R_l = I_l, the identity edit); the encoder and both branches' features kept.

    Why (measured, "warm the sky", 120 steps from the shipped dust model): its mask is ~0.1
    (logit -2.1) wherever there is no dust, and two exemplars did not undo that, so the look
    stayed off on half the photos: 71.9 % of the error left; opened first, 48.7 %.
    """
    model = copy.deepcopy(base).eval()
    with torch.no_grad():
        logits = [torch.logit(model.lrl(_thumbnail(b, thumb))[0], eps=1e-6) for b in befores]
        model.lrl.mask_branch.head.bias -= torch.cat([x.flatten() for x in logits]).median()
        head = model.lrl.retouch_branch.head
        head.weight.zero_()
        head.bias.zero_()
    return model


def _thumbnail(image: np.ndarray, long_side: int) -> torch.Tensor:
    """(1, 3, h, w) float thumbnail, each side a multiple of 64 (what the encoder takes)."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    size = tuple(max(64, round(n * scale / 64) * 64) for n in (w, h))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None]


def at_thumbnail(model: ABPN, thumb: int) -> ABPN:
    """The learned network set to be run at the thumbnail scale it learned at.

    A look learned on 256 px thumbnails is applied at 256 px (the engine picks l from the
    model's `thumbnail`), not at the 768 px the dust base was trained for; the learned model
    therefore sees dust as the old 256 px model did (too small to remove).
    """
    if model.config.thumbnail == thumb:
        return model
    out = ABPN(dataclasses.replace(model.config, thumbnail=thumb))
    out.load_state_dict(model.state_dict())
    return out.eval()


def split_holdout(infos: list[PairInfo], enabled: bool) -> tuple[PairInfo | None, list[PairInfo]]:
    """(held-out pair, training pairs): the last pair is held out when there are enough."""
    if enabled and len(infos) >= HOLDOUT_MIN_PAIRS:
        return infos[-1], infos[:-1]
    return None, infos


def heldout_images(held: PairInfo, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out pair at HELDOUT_SIDE: the checked arrays when they already are."""
    if max_side == HELDOUT_SIDE and held.images is not None:
        return held.images
    return load_rgb_uniform(held.before, HELDOUT_SIDE), load_rgb_uniform(held.after, HELDOUT_SIDE)


def score_base(
    held: PairInfo,
    images: tuple[np.ndarray, np.ndarray],
    base: ABPN,
    base_path: Path,
    base_sha: str,
) -> HeldOut:
    """Doing nothing and the base model, scored on the held-out pair."""
    from abpn_cli.engine import EngineError, load_model
    from abpn_cli.training.metrics import psnr

    try:  # a model file runs as shipped; a checkpoint is compiled in memory
        base_loaded = load_model(base_path, "cpu")
    except EngineError:
        base_loaded = engine_model(base, base_path, base_sha)
    return HeldOut(
        pair=held.name,
        side=max(images[0].shape[:2]),
        psnr_nothing=psnr(*images),
        psnr_base=_score(base_loaded, *images),
    )


def score_learned(
    heldout: HeldOut, images: tuple[np.ndarray, np.ndarray], model: ABPN, out: Path
) -> None:
    """The learned model's score on the held-out pair, into `heldout`."""
    heldout.psnr_learned = _score(engine_model(model, out, ""), *images)


def engine_model(model: ABPN, path: Path, sha256: str):  # -> LoadedModel (lazy import)
    """An in-memory TorchScript copy of `model` that engine.retouch can run, on the CPU."""
    from abpn_cli.engine import LoadedModel

    clean = ABPN(model.config)
    clean.load_state_dict({k: v.contiguous() for k, v in model.state_dict().items()})
    scripted = torch.jit.script(clean.eval()).to(memory_format=torch.channels_last)
    return LoadedModel(module=scripted, path=path, sha256=sha256, config=model.config)


def _score(loaded, before: np.ndarray, after: np.ndarray) -> float:
    """PSNR of what `abpn retouch` makes of `before` (as 16-bit pixels) against `after`."""
    from abpn_cli.engine import RetouchOptions, retouch
    from abpn_cli.training.metrics import psnr

    pixels = np.round(np.clip(before, 0.0, 1.0) * 65535.0).astype(np.uint16)
    out = retouch(loaded, pixels, RetouchOptions()).image.astype(np.float32) / 65535.0
    return psnr(out, after)
