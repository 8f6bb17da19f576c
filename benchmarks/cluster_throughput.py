"""Local batch vs `--cluster ray` on this one machine: what Ray's machinery costs.

All run the same files with the same model into fresh output folders, alternating (local,
local with one torch thread, ray, ...) so background load hits them alike. The Ray cluster
is started once here (`ray.init`, timed on its own); each `--cluster ray` run then includes
what every real run pays: starting the actors, loading the model in each, shipping paths and
results. Each 1-CPU worker runs one torch thread, so "local, 1 torch thread" is the fair
baseline: its ratio is Ray's own cost, the price a multi-node run pays before its extra
machines pay it back (against torch's default threads, load on the machine decides).

    python benchmarks/cluster_throughput.py examples/photos --repeat 2 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.batch.cluster import ClusterSettings, RayDriver, import_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="photos (JPEG/PNG/TIFF) to retouch")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="copies of each photo")
    parser.add_argument("--rounds", type=int, default=2, help="local/ray pairs to run")
    parser.add_argument("--workers", type=int, default=None, help="Ray actors [one per CPU]")
    parser.add_argument(
        "--resize", type=int, default=0, help="shrink copies to this long side (per-file cost)"
    )
    args = parser.parse_args()

    print(_machine())
    work = Path(tempfile.mkdtemp(prefix="abpn-cluster-bench-"))
    ray = import_ray()
    try:
        megapixels, count = _collect(args.folder, work / "in", args.repeat, args.resize)
        print(f"{count} files, {megapixels:.0f} MP in total")
        start = time.perf_counter()
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="warning")
        print(f"ray.init (once per cluster, not per batch): {time.perf_counter() - start:.1f} s")
        modes = ("local", "local-1t", "ray")
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for i in range(args.rounds):
            for mode in modes:
                seconds = _run(work, args, mode, i)
                times[mode].append(seconds)
                print(f"  round {i + 1} {mode:>8}: {seconds:6.1f} s  {count / seconds:.3f} img/s")
        local, one, clustered = (statistics.median(times[m]) for m in modes)
        print(
            f"median local {local:.1f} s ({megapixels / local:.2f} MP/s), local with 1 torch "
            f"thread {one:.1f} s, --cluster ray {clustered:.1f} s "
            f"({megapixels / clustered:.2f} MP/s); overhead ratio (ray time / local time) "
            f"{clustered / one:.2f} against 1 thread, {clustered / local:.2f} against default"
        )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, args: argparse.Namespace, mode: str, round_no: int) -> float:
    out = work / f"out-{mode}-{round_no}"
    settings = BatchSettings(inputs=(work / "in",), out=out, model=args.model, quiet=True)
    driver = RayDriver(ClusterSettings(workers=args.workers)) if mode == "ray" else None
    threads = torch.get_num_threads()
    if mode == "local-1t":  # what each 1-CPU Ray worker runs with
        torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        outcome = run_batch(settings, RecordingUI(), driver=driver)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    if outcome.exit_code != 0:
        raise SystemExit(f"{mode} run failed (exit {outcome.exit_code}): {outcome.message}")
    return seconds


def _collect(folder: Path, dest: Path, repeat: int, resize: int) -> tuple[float, int]:
    """`repeat` copies of every photo in `folder` (work for every worker), maybe shrunk."""
    dest.mkdir(parents=True)
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png", ".tif"})
    megapixels = 0.0
    for photo in photos:
        with Image.open(photo) as image:
            if resize:
                image.thumbnail((resize, resize))
            size = image.size
            for k in range(repeat):
                target = dest / f"{photo.stem}-{k}{photo.suffix}"
                if resize:
                    image.save(target)
                else:
                    shutil.copy2(photo, target)
                megapixels += size[0] * size[1] / 1e6
    return megapixels, len(photos) * repeat


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = ", load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"machine: {platform.node()}, {cpu}, {os.cpu_count()} cores{load}, GPU: {gpu}"


if __name__ == "__main__":
    main()
