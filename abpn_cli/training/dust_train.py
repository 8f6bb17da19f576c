"""Stage 1 of the dust model: train the LRL alone on dusty crops of whole-frame thumbnails.

Why the LRL alone (measured, docs/DUST.md): with a perfect thumbnail and the blend layer only
upsampled (no refinement), the expansion removes 86 % of the dust error on the held-out photos
(`benchmarks/dust_ceiling.py`), so the pyramid is not the bottleneck; the LRL is. Training it
alone on small crops of thumbnails (`training.dust_data`) skips every full-resolution tensor,
which is what held the old full-network trainer to ~4 samples/s.

Loss (per batch): ``sum (R_l - T_l)^2 / (sum (I_l - T_l)^2 + floor)`` -- the share of the dust
error left; the floor (1e-6 per value) makes changes to dust-free crops cost too -- plus
``dice_weight * dice(M, M_gt) + bce_weight * BCE(M, M_gt)`` with
``M_gt = max-pool(max_c |I_l - T_l| > 0.003)``, plus ``false_weight`` times a false-hit term
(the crop's strongest mask cells away from any dust, pushed to 0). A share of crops carry no dust.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from abpn_cli.engine.modelcard import ModelCard
from abpn_cli.model import ABPN, ABPNConfig
from abpn_cli.training.dust import DustParams
from abpn_cli.training.dust_data import DustBatch, DustSource, dust_sources, sample_batch
from abpn_cli.training.losses import dice_loss
from abpn_cli.training.slim import half_widths, slim_from
from abpn_cli.training.thumbs import load_thumbs
from abpn_cli.training.train_settings import MIN_BATCH

# The dust model's architecture: thumbnails of ~768 px (so the smallest promised spot, 0.26 %
# of the long side, spans 2 px in I_l), slim high-resolution LAMs (they dominate the cost),
# the residual gated by the mask; soft light measured better than multiply for dust
# (benchmarks/dust_ceiling.py: 86.0 % vs 84.9 % of the error removed with perfect thumbnails).
# The edit is a gain (multiplicative): continued from the additive second model for 120 min,
# held-out crops went 48.9 -> 51.7 % removed and false hits 0.18 -> 0.16, where a further
# additive continuation had gained nothing (docs/DUST.md).
DUST_CONFIG = ABPNConfig(
    encoder_widths=[16, 32, 64, 96, 128, 192],
    mask_widths=[96, 64, 48, 32],
    lrb_widths=[96, 64, 48, 32, 24, 16],
    refine_hidden=16,
    thumbnail=768,
    gate_residual=True,
    detail_input=True,
    multiplicative=True,
    blend_init="soft_light",
)
# Render scales: twice the thumbnails the engine picks for 2-6K frames (l chosen so the long
# side / 2^l is within a factor sqrt(2) of 768: 543-1086 px).
RENDER_SIDES = (1152, 1536, 2048)
VAL_SIDE = 1536  # held-out photos are validated at one render scale (smaller ones at 1152)
DUST_MASK_THRESHOLD = 0.003  # ~0.8/255 in I_l: faint dust must still count as an edit


class DustTrainError(ValueError):
    """Bad settings or data for the dust trainer (a clear message, no traceback)."""


@dataclass(frozen=True)
class DustTrainSettings:
    photos: tuple[Path, ...]
    holdout: tuple[Path, ...]
    out: Path
    cache_dir: Path | None = None
    steps: int = 20000
    max_minutes: float | None = None
    batch: int = 24
    crop: int = 128  # thumbnail pixels; rendered at 2x (dust needs little context)
    lr: float = 1e-3
    lr_decay_at: float = 0.8  # share of the run (steps or minutes) after which lr /= 10
    clean_share: float = 0.2
    favour_smooth: float = 0.6  # share of crops and spots put on smooth places (see smooth_map)
    zoom_share: float = 0.0  # share of crops whose dust is twice as large (dust_data.ZOOM)
    dice_weight: float = 0.5
    bce_weight: float = 1.0
    false_weight: float = 0.5  # see false_hit_loss
    val_every: int = 250
    val_batches: int = 6
    seed: int = 0
    init_from: Path | None = None
    # the architecture at half width (training.slim); with init_from, cut from that model's
    # strongest channels: about half the LRL's cost, for a model that must be faster
    half_width: bool = False
    compile: bool = True
    config: ABPNConfig = field(default_factory=lambda: DUST_CONFIG)
    dust: DustParams = field(default_factory=DustParams)

    def __post_init__(self) -> None:
        if not self.photos:
            raise DustTrainError("no training photos given")
        if self.crop % 64:
            raise DustTrainError(f"crop must be a multiple of 64 (the encoder), got {self.crop}")
        if self.batch < MIN_BATCH:
            raise DustTrainError(f"batch must be >= {MIN_BATCH} (BatchNorm)")
        if not 0.0 <= self.clean_share < 1.0:
            raise DustTrainError("clean_share must be within [0, 1)")
        if not 0.0 <= self.zoom_share <= 1.0:
            raise DustTrainError("zoom_share must be within [0, 1]")


def dust_mask_target(dusty: Tensor, clean: Tensor, size: tuple[int, int]) -> Tensor:
    changed = (dusty - clean).abs().amax(dim=1, keepdim=True) > DUST_MASK_THRESHOLD
    return F.adaptive_max_pool2d(changed.to(dusty.dtype), size)


FALSE_HIT_CELLS = 4  # a false spot covers a few mask cells; their mean is the crop's false hit


def false_hits(mask: Tensor, gt: Tensor) -> Tensor:
    """(N,) mean of each crop's FALSE_HIT_CELLS highest mask cells >= 2 cells away from dust.

    Why (measured on the first shipped model): dust-free photos kept ~14 confident false spots
    each, so only 36 % of their tiles could be copied untouched. Per-pixel BCE cannot see them:
    a false spot is ~4 of 4096 cells, ~0.002 of the loss. A crop-level term can.
    """
    near = F.max_pool2d(gt, 5, stride=1, padding=2)
    away = (mask * (1.0 - near)).flatten(1)
    return away.topk(min(FALSE_HIT_CELLS, away.shape[1]), dim=1).values.mean(dim=1)


def lrl_losses(
    mask: Tensor,
    retouched: Tensor,
    batch: DustBatch,
    dice_weight: float,
    bce_weight: float,
    false_weight: float = 0.0,
) -> dict[str, Tensor]:
    """Share of the dust error left (+ a floor so clean batches count), mask dice and BCE.

    Why BCE beside the paper's dice (measured, first run): dice's gradient on a pixel is
    ~1/|M|, so a mask that starts at ~0.4 everywhere over sparse dust barely moves; after 600
    steps (14 k samples) it still sat at mean 0.4 following image edges, not the dust. A
    per-pixel BCE, positives weighted x10 (dust covers ~1 % of the mask), gives every cell
    its own gradient.
    """
    err = (retouched - batch.clean).square().sum()
    base = (batch.dusty - batch.clean).square().sum()
    floor = batch.clean.numel() * 1e-6  # (1/1000)^2 per value: clean crops still cost
    left = err / (base + floor)
    gt = dust_mask_target(batch.dusty, batch.clean, mask.shape[-2:])
    dice = dice_loss(mask, gt)
    bce = F.binary_cross_entropy(mask.clamp(1e-6, 1 - 1e-6), gt, weight=1.0 + 9.0 * gt)
    false = -torch.log1p(-false_hits(mask, gt).clamp(max=1 - 1e-6)).mean()
    total = left + dice_weight * dice + bce_weight * bce + false_weight * false
    return {"left": left, "dice": dice, "bce": bce, "false": false, "total": total}


@dataclass
class ValScore:
    step: int
    left: float  # share of the dust error left on the dusty held-out crops (lower is better)
    clean_change: float  # mean |R_l - I_l| on dust-free held-out crops, in 1/255
    dice: float
    false_hit: float = 0.0  # mean false_hits on the dust-free held-out crops (lower is better)

    @property
    def selection(self) -> float:
        """What the best model minimises: dust left plus confident false spots on clean crops."""
        return self.left + self.false_hit


def make_val_set(
    holdout: Sequence[DustSource], settings: DustTrainSettings
) -> tuple[list[DustBatch], list[DustBatch]]:
    """Fixed dusty and clean batches from held-out photos (the same every evaluation)."""
    s, rng = settings, np.random.default_rng(settings.seed + 1000)
    dusty = [
        sample_batch(holdout, rng, s.batch, s.crop, s.dust, 0.0, 0.0, s.zoom_share)
        for _ in range(settings.val_batches)
    ]
    clean = [
        sample_batch(holdout, rng, settings.batch, settings.crop, settings.dust, 1.0 - 1e-9)
        for _ in range(max(1, settings.val_batches // 3))
    ]
    return dusty, clean


@torch.no_grad()
def validate(lrl: torch.nn.Module, step: int, dusty: list[DustBatch], clean: list[DustBatch]):
    lrl.eval()
    err = base = dice = 0.0
    for b in dusty:
        mask, out = lrl(b.dusty)
        err += float((out - b.clean).square().sum())
        base += float((b.dusty - b.clean).square().sum())
        dice += float(dice_loss(mask, dust_mask_target(b.dusty, b.clean, mask.shape[-2:])))
    change, false = [], []
    for b in clean:
        mask, out = lrl(b.dusty)
        change.append(float((out - b.dusty).abs().mean()) * 255)
        false.append(float(false_hits(mask, torch.zeros_like(mask)).mean()))
    lrl.train()
    return ValScore(
        step,
        err / max(base, 1e-12),
        float(np.mean(change)),
        dice / len(dusty),
        float(np.mean(false)),
    )


def lr_at(step: int, elapsed_min: float, s: DustTrainSettings) -> float:
    progress = step / s.steps
    if s.max_minutes:
        progress = max(progress, elapsed_min / s.max_minutes)
    return s.lr * (0.1 if progress >= s.lr_decay_at else 1.0)


def save_state(path: Path, state: dict[str, Any]) -> None:
    from abpn_cli.batch.fsutil import atomic_write

    atomic_write(path, lambda temp: torch.save(state, temp))


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    st = rng.bit_generator.state
    return {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"])}


def _set_rng(rng: np.random.Generator, saved: dict[str, Any]) -> None:
    st = rng.bit_generator.state
    st["state"] = {"state": int(saved["state"]), "inc": int(saved["inc"])}
    rng.bit_generator.state = st


@dataclass
class DustRun:
    """The state of a stage-1 run: what a checkpoint holds."""

    model: ABPN
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    step: int = 0
    best: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    minutes_before: float = 0.0  # training time of earlier sessions of this run

    def state(self, minutes: float) -> dict[str, Any]:
        return {
            "step": self.step,
            "config": self.model.config.to_dict(),
            "lrl": self.model.lrl.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": _rng_state(self.rng),
            "best": self.best,
            "history": self.history,
            "minutes": minutes,
        }


def start_run(settings: DustTrainSettings) -> DustRun:
    """A fresh run, the one in out/last.ckpt (resume), or one from init_from (a model file)."""
    last = settings.out / "last.ckpt"
    if last.exists():
        state = torch.load(last, weights_only=True)
        model = ABPN(ABPNConfig.from_dict(state["config"]))
        model.lrl.load_state_dict(state["lrl"])
        run = DustRun(
            model,
            torch.optim.Adam(model.lrl.parameters(), lr=settings.lr),
            np.random.default_rng(settings.seed),
        )
        run.opt.load_state_dict(state["optimizer"])
        _set_rng(run.rng, state["rng"])
        run.step, run.best, run.history = state["step"], state["best"], state["history"]
        run.minutes_before = state.get("minutes", 0.0)
        return run
    if settings.init_from is not None:
        model = _model_from_file(settings)
    else:
        model = ABPN(half_widths(settings.config) if settings.half_width else settings.config)
    opt = torch.optim.Adam(model.lrl.parameters(), lr=settings.lr)
    return DustRun(model, opt, np.random.default_rng(settings.seed))


def _model_from_file(settings: DustTrainSettings) -> ABPN:
    """The network a run continues from `init_from`: its weights in settings.config's output
    form (e.g. an additive model read as a gain), or its strongest channels at half width."""
    from abpn_cli.engine import EngineError
    from abpn_cli.engine.modelfile import load_eager

    assert settings.init_from is not None
    try:
        eager, _meta = load_eager(settings.init_from)
    except (EngineError, RuntimeError) as exc:  # missing, not a model file, damaged
        raise DustTrainError(f"cannot start from --init-from {settings.init_from}: {exc}") from exc
    if settings.half_width:  # the file's own architecture, narrower
        return slim_from(eager, half_widths(eager.config))
    # the file's thumbnail: a model continued keeps the scale it was trained for
    model = ABPN(replace(settings.config, thumbnail=eager.config.thumbnail))
    try:
        model.load_state_dict(eager.state_dict())
    except RuntimeError as exc:
        raise DustTrainError(f"{settings.init_from} has another architecture") from exc
    return model


def export_dust_model(model: ABPN, path: Path, card: ModelCard) -> str:
    """The engine's model file: trained LRL, refiner as pure upsampling, named blend init."""
    from abpn_cli.engine.modelfile import save_model_file

    clean = ABPN(model.config)
    clean.lrl.load_state_dict({k: v.contiguous() for k, v in model.lrl.state_dict().items()})
    return save_model_file(clean, path, card)


Progress = Callable[[str], None]


def _train_step(
    run: DustRun, fwd: Callable, sources: Sequence[DustSource], s: DustTrainSettings
) -> dict[str, Tensor]:
    batch = sample_batch(
        sources, run.rng, s.batch, s.crop, s.dust, s.clean_share, s.favour_smooth, s.zoom_share
    )
    mask, out = fwd(batch.dusty)
    terms = lrl_losses(mask, out, batch, s.dice_weight, s.bce_weight, s.false_weight)
    run.opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    run.opt.step()
    run.step += 1
    return {k: v.detach() for k, v in terms.items()}


def _validate_and_save(
    run: DustRun, s: DustTrainSettings, val: tuple[list, list], minutes: float
) -> ValScore:
    """Score the held-out crops, checkpoint, and export the model file when it is the best."""
    score = validate(run.model.lrl, run.step, *val)
    run.history.append(asdict(score))
    is_best = score.selection < run.best
    run.best = min(run.best, score.selection)
    save_state(s.out / "last.ckpt", run.state(minutes))
    if is_best:
        details = {
            "stage": "lrl",
            "val": asdict(score),
            "crop": s.crop,
            "batch": s.batch,
            "render_sides": list(RENDER_SIDES),
            "lr": s.lr,
            "photos": [p.name for p in s.photos],
            "false_weight": s.false_weight,
            "zoom_share": s.zoom_share,
            "half_width": s.half_width,
        }
        card = ModelCard(
            kind="train-dust",
            steps=run.step,
            samples=run.step * s.batch,
            minutes=round(minutes, 1),
            init_from=None if s.init_from is None else s.init_from.name,
            details=details,
        )
        export_dust_model(run.model, s.out / "model.pt", card)
    return score


def train_dust(settings: DustTrainSettings, progress: Progress = print) -> ValScore | None:
    """Run (or resume) stage 1; checkpoints every val_every steps, exports the best model.

    Ctrl-C saves a checkpoint first; rerunning the same settings continues from it.
    """
    torch.manual_seed(settings.seed)
    run = start_run(settings)  # first: a bad --init-from fails before minutes of decoding
    settings.out.mkdir(parents=True, exist_ok=True)
    sources = dust_sources(load_thumbs(settings.photos, RENDER_SIDES, settings.cache_dir))
    held_photos = settings.holdout or settings.photos[:2]
    held_thumbs = load_thumbs(held_photos, (VAL_SIDE,), settings.cache_dir)
    held_thumbs = held_thumbs or load_thumbs(held_photos, RENDER_SIDES[:1], settings.cache_dir)
    held = dust_sources(held_thumbs)
    progress(f"{len(sources)} training thumbnails, {len(held)} held out")
    val = make_val_set(held, settings)
    if run.step:
        progress(f"resumed at step {run.step} (best selection score {run.best:.4f})")
    run.model.lrl.train()
    fwd = torch.compile(run.model.lrl) if settings.compile else run.model.lrl
    start = time.perf_counter()
    rate_t, score = start, None

    def minutes() -> float:
        return run.minutes_before + (time.perf_counter() - start) / 60

    try:
        while run.step < settings.steps:
            if settings.max_minutes and minutes() >= settings.max_minutes:
                break
            for g in run.opt.param_groups:
                g["lr"] = lr_at(run.step, minutes(), settings)
            terms = _train_step(run, fwd, sources, settings)
            if run.step % 25 == 0:
                rate = 25 * settings.batch / (time.perf_counter() - rate_t)
                rate_t = time.perf_counter()
                progress(
                    f"step {run.step} left {float(terms['left']):.4f} "
                    f"bce {float(terms['bce']):.3f} false {float(terms['false']):.3f} "
                    f"{rate:.1f} samples/s"
                )
            if run.step % settings.val_every == 0:
                score = _validate_and_save(run, settings, val, minutes())
                progress(
                    f"val step {run.step}: {100 * (1 - score.left):.1f} % removed, "
                    f"clean change {score.clean_change:.3f}/255, dice {score.dice:.3f}, "
                    f"false hits {score.false_hit:.3f}"
                )
    except KeyboardInterrupt:
        save_state(settings.out / "last.ckpt", run.state(minutes()))
        raise
    if score is None or score.step != run.step:
        score = _validate_and_save(run, settings, val, minutes())
    return score
