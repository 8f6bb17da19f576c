"""How long the review page of a large batch takes to build and to open in headless Chromium.

    python benchmarks/review_page.py data/photos/train --files 100 --long-side 2000

Makes FILES photos (the folder's photos cycled, each resized to LONG_SIDE, flipped on every
other pass so no two are the same), retouches them with the shipped model, builds the page
(`abpn review`), then times Chromium opening it from disk and painting a screenshot. Prints the
batch time, the page build time, the page's size on disk and the browser time.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.batch.review import ReviewSettings, run_review


def make_photos(src: list[Path], dest: Path, count: int, long_side: int) -> None:
    dest.mkdir(parents=True)
    for i in range(count):
        img = cv2.imread(str(src[i % len(src)]), cv2.IMREAD_COLOR)
        scale = long_side / max(img.shape[:2])
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if (i // len(src)) % 2:
            img = img[:, ::-1]
        cv2.imwrite(str(dest / f"frame{i:03d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def chromium_seconds(page: Path, profile: Path, shot: Path) -> float:
    args = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1400,1000",
        page.as_uri(),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--long-side", type=int, default=2000)
    ap.add_argument("--keep", type=Path, help="keep the batch here (and look at the page)")
    a = ap.parse_args()
    src = sorted(p for p in a.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not src or shutil.which("chromium") is None:
        print("error: needs photos and the chromium binary", file=sys.stderr)
        return 2
    work = a.keep or Path(tempfile.mkdtemp(prefix="abpn-review-"))
    make_photos(src, work / "in", a.files, a.long_side)
    t0 = time.perf_counter()
    outcome = run_batch(
        BatchSettings(inputs=(work / "in",), out=work / "out", device="cpu"), RecordingUI()
    )
    t1 = time.perf_counter()
    result = run_review(ReviewSettings(out=work / "out"))
    t2 = time.perf_counter()
    size = sum(f.stat().st_size for f in (work / "out" / "_review").rglob("*") if f.is_file())
    browser = chromium_seconds(result.page, work / "profile", work / "shot.png")
    print(f"machine: {platform.processor() or platform.machine()}, {platform.node()}")
    print(f"{a.files} files of {a.long_side} px long side, exit {outcome.exit_code}")
    print(f"batch {t1 - t0:.1f} s, page build {t2 - t1:.1f} s ({result.shown} files shown)")
    print(f"page folder {size / 1e6:.1f} MB; chromium open + screenshot {browser:.1f} s")
    print(f"screenshot: {work / 'shot.png'}")
    if a.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
