"""Tables and before/after crops for the `abpn learn` worked example (see run.sh).

    python examples/learn/summarize.py --out runs/learn-demo --pairs data/learn/test10 \
        --shipped abpn_cli/weights/abpn-default.pt [--crops examples/learn/crops]

reads OUT/eval-{nothing,shipped,learned}.json (`abpn eval --report`) and the learned model
(OUT/learned.pt, its card), and writes OUT/results.md plus one PNG per crop:
before | shipped model | learned | true edit | |learned - true| x4.

"Error to the true edit" is the mean squared error against the true edited photo, per photo
(from each file's PSNR: MSE = 10^(-PSNR/10)), averaged over the photos; RMSE is shown in
8-bit levels.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.engine import ModelCard, RetouchOptions, inspect_model_file, load_model, retouch
from abpn_cli.imaging import read_photo

METHODS = ("nothing", "shipped", "learned")
TILE = 256
# (photo stem, crop box as fractions x0, y0, x1, y1 of the frame, or (cx, cy) for a 1:1 crop
# of TILE x TILE original pixels): sky/land borders, blue flowers (the edit is defined by
# colour, so they are edited too) and, at 1:1, a kite with blue panels against the sky
CROPS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("sunset_by_Aitzol_Berasategi", (0.00, 0.25, 0.45, 0.75)),
    ("aitzgorri_by_Aitzol_Berasategi", (0.30, 0.05, 0.75, 0.55)),
    ("LadyBird", (0.00, 0.00, 0.45, 0.50)),
    ("Kite", (0.658, 0.361)),
)
DIFF_GAIN = 4


def _mse(psnr: float | None) -> float:
    return 0.0 if psnr is None else 10.0 ** (-psnr / 10.0)


def tables(out: Path) -> tuple[str, dict[str, float]]:
    reports = {m: json.loads((out / f"eval-{m}.json").read_text()) for m in METHODS}
    names = [f["name"] for f in reports["nothing"]["files"]]
    mse = {m: [_mse(f["psnr_out"]) for f in reports[m]["files"]] for m in METHODS}
    mean = {m: float(np.mean(v)) for m, v in mse.items()}
    lines = [
        "| method | error to the true edit (mean MSE) | RMSE (8-bit levels) | vs doing nothing "
        "| mean PSNR | change outside the edit (1/255) |",
        "|---|---|---|---|---|---|",
    ]
    for m in METHODS:
        s = reports[m]["summary"]
        lines.append(
            f"| {m} | {mean[m]:.2e} | {255 * math.sqrt(mean[m]):.2f} | "
            f"{mean[m] / mean['nothing']:.1%} | {s['psnr_out']:.2f} dB | {s['locality_255']:.2f} |"
        )
    lines += ["", "| photo | size | nothing | shipped | learned |", "|---|---|---|---|---|"]
    for i, name in enumerate(names):
        f = reports["nothing"]["files"][i]
        cells = []
        for m in METHODS:
            p = reports[m]["files"][i]["psnr_out"]
            cells.append("identical" if p is None else f"{p:.2f} dB")
        lines.append(f"| {name} | {f['width']}x{f['height']} | " + " | ".join(cells) + " |")
    return "\n".join(lines), mean


def _tile(img: np.ndarray, box: tuple[float, ...], label: str) -> np.ndarray:
    h, w = img.shape[:2]
    if len(box) == 2:  # 1:1
        x0 = min(max(0, round(box[0] * w) - TILE // 2), w - TILE)
        y0 = min(max(0, round(box[1] * h) - TILE // 2), h - TILE)
        x1, y1 = x0 + TILE, y0 + TILE
    else:
        x0, y0, x1, y1 = (round(v) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
    crop = img[y0:y1, x0:x1]
    th = round(TILE * crop.shape[0] / crop.shape[1])
    tile = cv2.resize(crop, (TILE, th), interpolation=cv2.INTER_AREA)
    strip = np.full((18, TILE, 3), 255, np.uint8)
    cv2.putText(strip, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, tile])


def crops(out: Path, pairs: Path, shipped: Path, dest: Path) -> list[Path]:
    """Crop panels; outputs computed by engine.retouch (what `abpn retouch` computes, before
    its JPEG encoding, so the error tile shows the model's error, not compression noise)."""
    model = load_model(shipped, "cpu")
    learned_model = load_model(out / "learned.pt", "cpu")
    written = []
    for stem, box in CROPS:
        before_path = next((pairs / "before").glob(stem + ".*"))
        before = read_photo(before_path).pixels
        true = read_photo(pairs / "after" / f"{stem}.png").pixels
        learned = retouch(learned_model, before, RetouchOptions()).image
        base = retouch(model, before, RetouchOptions()).image
        err = np.abs(learned.astype(np.int16) - true.astype(np.int16)) * DIFF_GAIN
        tiles = [
            _tile(before, box, "before"),
            _tile(base, box, "shipped model"),
            _tile(learned, box, "learned (abpn learn)"),
            _tile(true, box, "true edit"),
            _tile(np.clip(err, 0, 255).astype(np.uint8), box, f"|learned - true| x{DIFF_GAIN}"),
        ]
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        row = np.hstack([t for pair in zip(tiles, [gap] * 5, strict=True) for t in pair][:-1])
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / f"{stem}{'-1to1' if len(box) == 2 else ''}.png"
        cv2.imwrite(str(path), row[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--shipped", type=Path, required=True)
    ap.add_argument("--crops", type=Path, default=None, help="default: OUT/crops")
    args = ap.parse_args()
    table, mean = tables(args.out)
    made = ModelCard.from_meta(inspect_model_file(args.out / "learned.pt"))
    card = {**made.details, "steps": made.steps}
    h = card.get("heldout") or {}
    written = crops(args.out, args.pairs, args.shipped, args.crops or args.out / "crops")
    exemplars = [f"{Path(e['before']).name} ({e['role']})" for e in card["exemplars"]]
    text = "\n".join(
        [
            "# abpn learn: 'warm the sky' learned from exemplars, applied to 10 other photos",
            "",
            f"- learned: {card['steps']} steps, {card['train_seconds']:.0f} s training loop, "
            f"{card['seconds']:.0f} s up to the save; settings {json.dumps(card['settings'])}",
            "- exemplars: " + ", ".join(exemplars),
            f"- held-out exemplar {h.get('pair')}: {h.get('psnr_nothing')} dB nothing, "
            f"{h.get('psnr_base')} dB shipped, {h.get('psnr_learned')} dB learned",
            f"- base model: {card['base_model']['path']} ({card['base_model']['sha256'][:16]}…)",
            f"- error left vs doing nothing: shipped {mean['shipped'] / mean['nothing']:.1%}, "
            f"learned {mean['learned'] / mean['nothing']:.1%}",
            "",
            table,
            "",
            "Crops: " + ", ".join(str(p) for p in written),
            "",
        ]
    )
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
