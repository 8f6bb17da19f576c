"""Runtime and peak memory per resolution, in the shape of the paper's Table 3.

Each resolution runs in a fresh child process so its peak memory (RSS on CPU, max allocated
on CUDA) is its own and not the high-water mark of an earlier, larger run.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abpn_cli.engine.errors import EngineError
from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_USAGE, ExitRule

DEFAULT_SIZES: tuple[tuple[int, int], ...] = (
    (512, 512),
    (1024, 1024),
    (2048, 2048),
    (4096, 4096),
    (4000, 6000),
)


@dataclass(frozen=True)
class BenchRow:
    height: int
    width: int
    levels: int
    seconds_median: float
    seconds_min: float
    peak_mb: float  # process peak RSS (CPU) or peak CUDA allocation
    baseline_mb: float  # the same measure after loading the model, before the first image
    tiles_total: int
    tiles_skipped: int
    device: str
    dtype: str


def bench_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth photo-like uint8 frame with fine grain, built without full-size float copies."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for y in range(0, height, 256):  # grain, a band at a time
        band = frame[y : y + 256].astype(np.int16)
        band += rng.integers(-5, 6, band.shape, dtype=np.int16)
        frame[y : y + 256] = np.clip(band, 0, 255).astype(np.uint8)
    return frame


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(args: tuple) -> BenchRow:
    model_path, device, half, height, width, repeats, skip, tile, threads = args
    import torch

    from abpn_cli.engine import RetouchOptions, load_model, retouch

    if threads:
        torch.set_num_threads(threads)
    model = load_model(Path(model_path), device, half=half)
    cuda = model.device.type == "cuda"
    pixels = bench_image(height, width)  # counted in the baseline: any caller holds its image
    options = RetouchOptions(skip_untouched=skip, tile=tile)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(model.device)
        baseline = torch.cuda.memory_allocated(model.device) / 2**20
    else:
        baseline = _rss_mb()
    result = retouch(model, pixels, options)  # warm-up (allocator, oneDNN primitives)
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = retouch(model, pixels, options)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(model.device) / 2**20 if cuda else _rss_mb()
    return BenchRow(
        height=height,
        width=width,
        levels=result.levels,
        seconds_median=statistics.median(times),
        seconds_min=min(times),
        peak_mb=peak,
        baseline_mb=baseline,
        tiles_total=result.tiles_total,
        tiles_skipped=result.tiles_skipped,
        device=str(model.device),
        dtype=str(model.dtype).replace("torch.", ""),
    )


def run_bench(
    model_path: Path,
    device: str = "auto",
    half: bool = False,
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
    repeats: int = 3,
    skip: bool = False,
    tile: int = 512,
    threads: int = 0,
):
    """Yield one BenchRow per size, each measured in its own spawned process."""
    ctx = mp.get_context("spawn")
    for height, width in sizes:
        with ctx.Pool(1) as pool:
            args = (str(model_path), device, half, height, width, repeats, skip, tile, threads)
            yield pool.apply(_worker, (args,))


class BenchUsageError(ValueError):
    """The options cannot describe a benchmark (exit 2)."""


@dataclass(frozen=True)
class BenchSettings:
    """One `abpn bench` run (the CLI owns the defaults: it is the only caller)."""

    model: Path | None
    device: str
    half: bool
    sizes: str  # "WxH,WxH,..."
    repeats: int
    skip: bool
    tile: int
    threads: int


def parse_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """`512x512,6000x4000` (width x height, as photographers say it) -> ((h, w), ...)."""
    try:
        sizes = tuple((int(s.split("x")[1]), int(s.split("x")[0])) for s in text.lower().split(","))
    except (ValueError, IndexError) as exc:
        raise BenchUsageError(f"--sizes must look like 512x512,6000x4000: {text!r}") from exc
    if any(h < 1 or w < 1 for h, w in sizes):
        raise BenchUsageError(f"--sizes must be at least 1x1 each: {text!r}")
    return sizes


def measure(settings: BenchSettings) -> Iterator[BenchRow]:
    """Check the model file and the sizes, then yield a row per size as it is measured."""
    from abpn_cli.engine import default_model_path, inspect_model_file
    from abpn_cli.engine.retouch import RetouchOptions, check_options

    path = settings.model or default_model_path()
    inspect_model_file(path)  # a bad model is exit 4 even when --sizes is wrong too
    sizes = parse_sizes(settings.sizes)
    try:
        check_options(RetouchOptions(tile=settings.tile))
    except ValueError as exc:
        raise BenchUsageError(f"--tile: {exc}") from exc
    s = settings
    yield from run_bench(path, s.device, s.half, sizes, s.repeats, s.skip, s.tile, s.threads)


# a bad --model or device is exit 4, bad --sizes exit 2
BENCH_EXITS = (ExitRule(EngineError, EXIT_ENVIRONMENT), ExitRule(BenchUsageError, EXIT_USAGE))

BENCH_COLUMNS = (
    "resolution",
    "l",
    "runtime (median)",
    "min",
    "peak memory",
    "model+runtime",
    "tiles skipped",
    "device",
)


def bench_cells(r: BenchRow) -> list[str]:
    """One printed table row (BENCH_COLUMNS)."""
    mem = "RSS" if r.device == "cpu" else "CUDA alloc"
    return [
        f"{r.width}x{r.height}",
        str(r.levels),
        f"{r.seconds_median:.3f} s",
        f"{r.seconds_min:.3f} s",
        f"{r.peak_mb:.0f} MB {mem}",
        f"{r.baseline_mb:.0f} MB",
        f"{r.tiles_skipped}/{r.tiles_total}",
        f"{r.device} {r.dtype}",
    ]
