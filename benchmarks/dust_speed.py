"""Cost per 6000x4000 frame: plain JPEG decode+encode vs `abpn retouch`, clean and dusty.

Makes N 6000x4000 JPEG frames from one photo (resized; dust from abpn_cli.training.dust at
the frame's own scale for the dusty set), then in this one process times: a plain Pillow
decode + encode of each frame (quality 92), and the batch runner (`abpn retouch` without the
process start-up) over the clean and the dusty folders, once on the first frame alone and
once on all N. Prints, per set, the cost of each further frame in a batch ((T_N - T_1) /
(N - 1): what a shoot of hundreds of frames pays per frame) and the batch's one-off start-up
(model load, first-call compilation), with the ratios to the plain decode+encode and the CPU.

    python benchmarks/dust_speed.py data/photos/holdout/digikam-lake.jpg --frames 5
    python benchmarks/dust_speed.py PHOTO --model a.pt --model b.pt   # two models, one run
"""

from __future__ import annotations

import argparse
import io
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.training.dust import DustParams, add_dust, sample_defects
from abpn_cli.training.thumbs import decode_float

SIZE = (6000, 4000)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _make_frames(photo: Path, folder: Path, frames: int, dusty: bool) -> list[Path]:
    base = cv2.resize(decode_float(photo), SIZE, interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    defects = sample_defects(rng, base.shape[:2], max(SIZE), DustParams(count=(15, 15)))
    folder.mkdir(parents=True)
    out = []
    for i in range(frames):
        img = np.roll(base, 37 * i, axis=1)  # a different frame, the same dust (a shoot)
        if dusty:
            img = add_dust(img, rng, defects=defects).dusty
        path = folder / f"frame{i:02d}.jpg"
        Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path, quality=92)
        out.append(path)
    return out


def _plain(paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
            im.save(io.BytesIO(), "JPEG", quality=92)
    return (time.perf_counter() - start) / len(paths)


def _abpn(folder: Path, out: Path, model: Path | None) -> tuple[float, int]:
    """Seconds of the batch runner over `folder`, and how many frames it copied as they were."""
    settings = BatchSettings(inputs=(folder,), out=out, model=model, device="cpu", quiet=True)
    start = time.perf_counter()
    outcome = run_batch(settings, RecordingUI())
    seconds = time.perf_counter() - start
    ok = sum(r.status == "ok" for r in outcome.results)
    if outcome.exit_code != 0 or ok == 0:
        raise SystemExit(f"error: retouch failed (exit {outcome.exit_code}): {outcome.message}")
    copied = sum(bool(r.edit and r.edit.source_copied) for r in outcome.results)
    return seconds, copied


def _per_frame(frames: list[Path], work: Path, name: str, model: Path | None):
    """(seconds per further frame, start-up seconds, frames copied as they were)."""
    one = work / f"{name}-one"
    one.mkdir()
    shutil.copy2(frames[0], one / frames[0].name)
    t_one, _ = _abpn(one, work / f"out-{name}-one", model)
    t_all, copied = _abpn(frames[0].parent, work / f"out-{name}", model)
    step = (t_all - t_one) / max(1, len(frames) - 1)
    return step, t_one - step, copied


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument(
        "--model", type=Path, action="append", help="Model file (repeatable) [the shipped one]."
    )
    args = ap.parse_args()
    if args.frames < 2:
        print(
            "error: --frames must be at least 2 (the per-frame cost is T_N - T_1)", file=sys.stderr
        )
        return 1
    if not args.photo.is_file():
        print(f"error: {args.photo} is not a file", file=sys.stderr)
        return 1
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="abpn-dust-speed-"))
    try:
        clean = _make_frames(args.photo, work / "clean", args.frames, dusty=False)
        dusty = _make_frames(args.photo, work / "dusty", args.frames, dusty=True)
        plain = _plain(clean + dusty)
        models = args.model or [None]
        sets = {
            (model, name): _per_frame(f, work, f"{name}{i}", model)
            for i, model in enumerate(models)
            for name, f in (("clean", clean), ("dusty", dusty))
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {_cpu_name()}, {torch.get_num_threads()} torch threads")
    print(f"{args.frames} frames of {SIZE[0]}x{SIZE[1]} per set, from {args.photo.name}")
    print(f"plain Pillow decode+encode : {plain:6.2f} s/frame")
    for (model, name), (step, startup, copied) in sets.items():
        label = "the shipped model" if model is None else model.name
        print(
            f"abpn retouch, {name} frames, {label} : {step:6.2f} s/frame  ({step / plain:.1f}x "
            f"plain; {copied} of {args.frames} nothing to do, copied as they were; "
            f"start-up {startup:.2f} s once per batch)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
