"""The network's side of training: the network and optimizers a run starts from (new,
fine-tuned or resumed), validation on the held-out batch, and the exported model file."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from abpn_cli.engine.spots import KEEP_ALL
from abpn_cli.model import ABPN
from abpn_cli.training.checkpoint import (
    Checkpoint,
    is_checkpoint,
    model_from_checkpoint,
    restore_rng,
)
from abpn_cli.training.discriminator import PatchDiscriminator
from abpn_cli.training.preview import write_preview
from abpn_cli.training.train_settings import TrainInitError, TrainSettings, TrainUsageError

DISC_LR = 2e-4  # pix2pix-style D settings: Adam(2e-4, betas 0.5/0.999)
DISC_BETAS = (0.5, 0.999)


@dataclass
class ValResult:
    """Validation on the fixed held-out batch (mean per-sample PSNR, dB)."""

    step: int
    psnr_input: float  # before vs target: what doing nothing scores
    psnr_output: float  # R_0 vs target
    mse_output: float
    locality_255: float  # mean |output - before| outside the edited region, in 1/255
    preview: Path | None = None


def load_init(path: Path) -> tuple[ABPN, str]:
    """Initial weights for fine-tuning, from one of our checkpoints or an exported model file."""
    if not path.exists():
        raise TrainInitError(f"--init-from: file not found: {path}")
    if is_checkpoint(path):
        model, _ = model_from_checkpoint(path)
        return model, "checkpoint"
    from abpn_cli.engine.errors import EngineError
    from abpn_cli.engine.modelfile import load_eager

    try:
        model, _meta = load_eager(path)
    except EngineError as exc:
        raise TrainInitError(f"--init-from: {exc}") from exc
    return model, "model file"


def _memory_format(settings: TrainSettings) -> torch.memory_format:
    """channels_last (faster convolutions on the CPU) unless the settings turn it off."""
    return torch.channels_last if settings.channels_last else torch.contiguous_format


def initial_model(
    settings: TrainSettings, ckpt: Checkpoint | None, start: ABPN | None = None
) -> tuple[ABPN, TrainSettings]:
    """The network to train (resumed, fine-tuned from `start` or `init_from`, or new), in
    training mode, and `settings` carrying its config. The config's thumbnail becomes the one
    the LRL trains at: it is what the engine uses to pick l at inference."""
    if ckpt is not None:
        config = ckpt.model_config()
        model = ABPN(config)
        model.load_state_dict(ckpt.model)
    elif start is not None:
        model = copy.deepcopy(start)  # the caller's network is left as it was
        config = model.config
    elif settings.init_from is not None:
        model, _kind = load_init(Path(settings.init_from))
        config = model.config
    else:
        config = settings.model_config
        model = ABPN(config)
    thumb = settings.crop >> settings.levels
    if config.thumbnail != thumb:
        config = dataclasses.replace(config, thumbnail=thumb)
        model.config = config
    settings = dataclasses.replace(settings, model_config=config)
    return model.to(memory_format=_memory_format(settings)).train(), settings


def optimizers(
    model: ABPN, settings: TrainSettings
) -> tuple[torch.optim.Optimizer, PatchDiscriminator | None, torch.optim.Optimizer | None]:
    """Adam for the network; a discriminator and its Adam only with an adversarial term."""
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    if settings.weights.adv > 0:
        disc = PatchDiscriminator().to(memory_format=_memory_format(settings)).train()
        return opt, disc, torch.optim.Adam(disc.parameters(), lr=DISC_LR, betas=DISC_BETAS)
    return opt, None, None


def restore(
    ckpt: Checkpoint,
    opt: torch.optim.Optimizer,
    disc: PatchDiscriminator | None,
    d_opt: torch.optim.Optimizer | None,
) -> tuple[int, float | None]:
    """Put the checkpoint's optimizer, discriminator and RNG states back; (step, best PSNR)."""
    opt.load_state_dict(ckpt.optimizer)
    if disc is not None and d_opt is not None:
        if ckpt.discriminator is None or ckpt.disc_optimizer is None:
            raise TrainUsageError("--resume: this run was trained without the adversarial term")
        disc.load_state_dict(ckpt.discriminator)
        d_opt.load_state_dict(ckpt.disc_optimizer)
    restore_rng(ckpt.rng)
    return ckpt.step, ckpt.best_psnr


def to_device_layout(t: Tensor, channels_last: bool) -> Tensor:
    """`t` in the memory layout the network trains in."""
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


def _pooled_psnr(x: Tensor, y: Tensor) -> float:
    """PSNR of the batch's pooled MSE: finite even when a sample has no edit (before == after),
    where a per-sample mean would be dominated by infinite or capped values."""
    mse = float(((x.double() - y.double()) ** 2).mean())
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)


def _mean_locality(before: Tensor, output: Tensor, region: Tensor) -> float:
    """metrics.locality (the eval convention) averaged over the samples that have an outside."""
    from abpn_cli.training.metrics import locality

    scores = []
    for b, o, r in zip(before, output, region, strict=True):
        s = locality(
            b.permute(1, 2, 0).numpy(), o.permute(1, 2, 0).numpy(), r.reshape(r.shape[-2:]).numpy()
        )
        if s.outside_pixels:
            scores.append(s.mean_abs_255)
    return float(np.mean(scores)) if scores else math.nan


@torch.no_grad()
def validate(
    model: ABPN,
    batch: tuple[Tensor, Tensor, Tensor],
    levels: int,
    step: int,
    preview_path: Path | None,
    channels_last: bool,
) -> ValResult:
    """Eval-mode pass on the fixed batch; PSNR of doing nothing vs of the network."""
    was_training = model.training
    model.eval()
    before, after, region = (to_device_layout(t, channels_last) for t in batch)
    out = model(before, levels)
    model.train(was_training)
    result = ValResult(
        step=step,
        psnr_input=_pooled_psnr(before, after),
        psnr_output=_pooled_psnr(out.result, after),
        mse_output=float(((out.result - after) ** 2).mean()),
        locality_255=_mean_locality(before, out.result, region),
    )
    if preview_path is not None:
        result.preview = write_preview(preview_path, before, out.result, after, out.mask)
    return result


def trained_copy(model: ABPN) -> ABPN:
    """A contiguous copy of the network in eval mode, made without a fresh initialisation (so
    the RNGs are left as training left them)."""
    return copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()


def export_model(
    model: ABPN, path: Path, settings: TrainSettings, val_history: list[ValResult], step: int
) -> str:
    """Write the engine's model file from a clean (contiguous, eval) copy of the network."""
    from abpn_cli.engine.modelcard import ModelCard
    from abpn_cli.engine.modelfile import save_model_file

    clean = ABPN(model.config)
    clean.load_state_dict({k: v.contiguous() for k, v in model.state_dict().items()})
    last_val = val_history[-1] if val_history else None
    details = {
        "crop": settings.crop,
        "levels": settings.levels,
        "batch": settings.batch,
        "lr": settings.lr,
        "seed": settings.seed,
        "data": "pairs" if settings.pairs is not None else "synthetic",
        "sources": [str(p) for p in settings.photos]
        or ([str(settings.pairs)] if settings.pairs else []),
        "loss_weights": dataclasses.asdict(settings.weights),
        "perceptual_loss": "1 - SSIM on R_l (offline stand-in for VGG: no weights offline)",
        "val_psnr_input": None if last_val is None else round(last_val.psnr_input, 3),
        "val_psnr_output": None if last_val is None else round(last_val.psnr_output, 3),
    }
    card = ModelCard(
        kind="train",
        steps=step,
        samples=step * settings.batch,
        init_from=None if settings.init_from is None else str(settings.init_from),
        sensitivity=KEEP_ALL,  # judged on validation crops with nothing gated
        details=details,
    )
    return save_model_file(clean, path, card)
