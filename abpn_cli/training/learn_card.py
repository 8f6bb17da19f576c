"""The model card of a learned model: the JSON stored inside the model file, and the
human-readable `learned.md` beside it (what it was learned from, how, and how well)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from abpn_cli.engine.modelcard import ModelCard
from abpn_cli.engine.spots import KEEP_ALL
from abpn_cli.training.learn_models import HOLDOUT_MIN_PAIRS, HeldOut
from abpn_cli.training.learn_settings import LearnSettings
from abpn_cli.training.losses import LossWeights
from abpn_cli.training.pair_checks import PairInfo


def card_path_for(out: Path) -> Path:
    """The human-readable model card next to the model: `learned.pt` -> `learned.md`."""
    return out.with_name(out.stem + ".md")


def _rounded(x: float | None, nd: int = 2) -> float | None:
    """JSON-safe: None for a missing or non-finite score."""
    return None if x is None or not math.isfinite(x) else round(x, nd)


def model_card(
    settings: LearnSettings,
    base_path: Path,
    base_sha: str,
    infos: list[PairInfo],
    held: PairInfo | None,
    steps: int,
    train_seconds: float,
    seconds: float,
    heldout: HeldOut | None,
    crop: int,
) -> ModelCard:
    """The card stored inside the model file (JSON types only)."""
    exemplars = [
        {
            "before": str(i.before),
            "after": str(i.after),
            "sha256_before": i.sha256_before,
            "sha256_after": i.sha256_after,
            "size": f"{i.width}x{i.height}",
            "edited_fraction": round(i.edited_fraction, 4),
            "role": "heldout" if i is held else "train",
        }
        for i in infos
    ]
    details = {
        "base_model": {"path": str(base_path), "sha256": base_sha},
        "exemplars": exemplars,
        "seconds": round(seconds, 1),  # up to the save (the sidecar has the final total)
        "train_seconds": round(train_seconds, 1),
        "heldout": None
        if heldout is None
        else {
            "pair": heldout.pair,
            "scored_at_long_side": heldout.side,
            "psnr_nothing": _rounded(heldout.psnr_nothing),
            "psnr_base": _rounded(heldout.psnr_base),
            "psnr_learned": _rounded(heldout.psnr_learned),
        },
        "settings": {
            "minutes": settings.minutes,
            "steps": settings.steps,
            "crop": crop,
            "levels": settings.levels,
            "batch": settings.batch,
            "lr": settings.lr,
            "lr_decay_at": settings.lr_decay_at,
            "max_side": settings.max_side,
            "seed": settings.seed,
            "threads": settings.threads,
            "loss_weights": dataclasses.asdict(learn_loss_weights()),
        },
        "limits": LIMITS,
    }
    return ModelCard(  # a look is judged (held-out check, eval) with nothing gated: so run it
        kind="learned",
        steps=steps,
        init_from=str(base_path),
        sensitivity=KEEP_ALL,
        details=details,
    )


def learn_loss_weights() -> LossWeights:
    """The losses `abpn learn` trains with: the paper's without the GAN term (see `learn`)."""
    return LossWeights(adv=0.0)


LIMITS = (
    "ABPN's blend layer changes tone, colour and fine texture where the mask says so; it "
    "cannot move, warp or reshape anything (no geometry), so an exemplar edit that moves "
    "pixels (liquify, reshaping) is not learnable with it."
)


def _fmt_db(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} dB"


def card_markdown(out: Path, sha: str, card: ModelCard, seconds: float) -> str:
    """The human-readable card written next to the model file."""
    d = card.details
    lines = [
        f"# Model card: {out.name}",
        "",
        f"A model learned by `abpn learn` from {len(d['exemplars'])} exemplar pair(s). "
        f"Use it with `abpn retouch --model {out.name}`.",
        "",
        f"- file sha256: `{sha}`",
        f"- created: {card.created}",
        f"- base model: `{d['base_model']['path']}` (sha256 `{d['base_model']['sha256']}`)",
        f"- steps: {card.steps}, training loop {d['train_seconds']:.0f} s, "
        f"whole command {seconds:.0f} s",
        f"- settings: {json.dumps(d['settings'])}",
        "",
        "## Exemplars",
        "",
        "| role | before | after | size | edited | sha256 before | sha256 after |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in d["exemplars"]:
        lines.append(
            f"| {e['role']} | {e['before']} | {e['after']} | {e['size']} | "
            f"{e['edited_fraction']:.1%} | `{e['sha256_before'][:16]}…` | "
            f"`{e['sha256_after'][:16]}…` |"
        )
    lines += ["", "## Held-out check", ""]
    h = d["heldout"]
    if h is None:
        lines.append(
            f"None: held-out scoring needs at least {HOLDOUT_MIN_PAIRS} pairs (one is kept out "
            "of training), or it was switched off."
        )
    else:
        lines += [
            f"`{h['pair']}` was not trained on. PSNR of the engine's output against its `after` "
            f"(whole photo at {h['scored_at_long_side']} px long side):",
            "",
            "| doing nothing | base model | learned |",
            "|---|---|---|",
            f"| {_fmt_db(h['psnr_nothing'])} | {_fmt_db(h['psnr_base'])} | "
            f"{_fmt_db(h['psnr_learned'])} |",
        ]
    lines += ["", "## Limits", "", LIMITS, ""]
    return "\n".join(lines)
