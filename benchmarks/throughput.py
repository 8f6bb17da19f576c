"""Batch throughput: the pipelined runner (reader and writer threads) vs a plain loop.

Both modes run the same per-file code on the same files, on the same machine, in one
invocation, each into its own fresh output folder, so the difference is the overlap alone.

    python benchmarks/throughput.py /usr/share/backgrounds --model weights/abpn-default.pt
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.imaging import read_photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="abpn-throughput-"))
    try:
        inputs = _collect(args.inputs, work / "in", args.limit)
        megapixels = 0.0
        for path in sorted((work / "in").iterdir()):
            photo = read_photo(path)
            megapixels += photo.pixels.shape[0] * photo.pixels.shape[1] / 1e6
        print(f"{len(inputs)} files, {megapixels:.0f} MP in total")
        for mode in ("simple", "pipelined"):
            out = work / f"out-{mode}"
            settings = BatchSettings(
                inputs=(work / "in",), out=out, model=args.model, device=args.device, quiet=True
            )
            start = time.perf_counter()
            outcome = run_batch(settings, RecordingUI(), mode=mode)
            seconds = time.perf_counter() - start
            ok = sum(r.status == "ok" for r in outcome.results)
            print(
                f"{mode:>9}: {seconds:7.1f} s  {ok / seconds:.3f} img/s  "
                f"{megapixels / seconds:.2f} MP/s  (ok {ok}, exit {outcome.exit_code})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _collect(sources: list[Path], dest: Path, limit: int) -> list[Path]:
    """Copy the chosen photos into one flat folder (names made unique)."""
    dest.mkdir(parents=True)
    files: list[Path] = []
    for src in sources:
        candidates = sorted(src.rglob("*.jp*g")) if src.is_dir() else [src]
        files.extend(p for p in candidates if p.is_file())
    if limit:
        files = files[:limit]
    copied = []
    for i, path in enumerate(files):
        target = dest / f"{i:03d}_{path.name}"
        shutil.copy2(path, target)
        copied.append(target)
    return copied


if __name__ == "__main__":
    main()
