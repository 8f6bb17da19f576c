"""Where the error lives: how far each stage of ABPN could take an eval set, at best.

    python benchmarks/ceiling.py --pairs data/eval1024 [--model weights/abpn-default.pt]

Per set (mean per-file PSNR against the target, dB):
- `input`: doing nothing.
- `perfect thumbnail`: R_l is the target's thumbnail, B_l = f_r(I_l, R_l) is only upsampled
  (an untrained refining module), then f_a at level 0. The most a perfect LRL gets with no
  help from the pyramid levels.
- `perfect low band`: the target's I_l with the input's high-frequency layers H_0..H_{l-1}
  (Laplacian swap). What fixing everything at thumbnail scale is worth.
- with `--model`: the model's own thumbnail PSNR (R_l vs the target's I_l, next to I_l's) and
  its full-resolution result; this separates "the LRL did not learn" from "the expansion lost it".

l is chosen as the engine does for the model's training thumbnail (256 without --model). Not run
in tests (seconds per 1024 set, about a minute per 4096 set on a 2-core CPU).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from abpn_cli.engine import EngineError
from abpn_cli.engine.geometry import choose_levels, padded_size
from abpn_cli.engine.modelfile import load_eager
from abpn_cli.model import ABPN, laplacian_pyramid, pyr_up
from abpn_cli.model.refine import upsample2x
from abpn_cli.training import evaluate as ev
from abpn_cli.training.eval_report import PSNR_CAP
from abpn_cli.training.metrics import psnr


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """metrics.psnr, capped like the eval summaries so identical images average finitely."""
    return min(PSNR_CAP, psnr(a.numpy(), b.numpy()))


def _tensor(img: np.ndarray, levels: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    h, w = img.shape[:2]
    ph, pw = padded_size(h, w, levels)
    return F.pad(t, (0, pw - w, 0, ph - h), mode="reflect") if (ph, pw) != (h, w) else t


@torch.no_grad()
def score_pair(loaded: ev.LoadedPair, thumbnail: int, model: ABPN | None) -> dict[str, float]:
    h, w = loaded.before_f.shape[:2]
    levels = choose_levels(h, w, thumbnail)
    x, y = _tensor(loaded.before_f, levels), _tensor(loaded.after_f, levels)
    gx, hx = laplacian_pyramid(x, levels)
    gy, _ = laplacian_pyramid(y, levels)
    blend_fn = ABPN().blend_fn  # the soft-light initial blend, as a fresh model has it

    def crop(t: torch.Tensor) -> torch.Tensor:
        return t[..., :h, :w].clamp(0.0, 1.0)

    blend = blend_fn.reverse(gx[levels], gy[levels])
    for _ in range(levels):
        blend = upsample2x(blend)
    low = gy[levels]
    for i in range(levels - 1, -1, -1):
        low = pyr_up(low) + hx[i]
    row = {
        "levels": float(levels),
        "input": _psnr(crop(x), crop(y)),
        "perfect thumbnail": _psnr(crop(blend_fn(x, blend)), crop(y)),
        "perfect low band": _psnr(crop(low), crop(y)),
        "thumbnail in": _psnr(gx[levels], gy[levels]),
    }
    if model is not None:
        out = model(x, levels)
        row["thumbnail out"] = _psnr(out.results[levels].clamp(0.0, 1.0), gy[levels])
        row["model"] = _psnr(crop(out.result), crop(y))
    return row


def main() -> None:
    try:
        _main()
    except (ValueError, EngineError, OSError) as exc:  # bad pairs folder, pair, or model
        raise SystemExit(f"error: {exc}") from None


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, action="append", required=True)
    ap.add_argument("--model", type=Path, default=None, help="model file (dense, eager pass)")
    args = ap.parse_args()
    model, thumbnail = None, 256
    if args.model is not None:
        model, _ = load_eager(args.model)
        model.eval()
        thumbnail = model.config.thumbnail
    for pairs_dir in args.pairs:
        pairs = ev.list_pairs(pairs_dir)
        rows = [score_pair(ev.load_eval_pair(p), thumbnail, model) for p in pairs]
        print(f"{pairs_dir} ({len(rows)} pairs, l = {int(rows[0]['levels'])})")
        for key in rows[0]:
            if key != "levels":
                print(f"  {key:18s} {np.mean([r[key] for r in rows]):6.2f} dB")


if __name__ == "__main__":
    main()
