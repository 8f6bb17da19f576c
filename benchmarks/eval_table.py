"""Score model(s) and baselines on eval set(s); print ONE markdown table for the README.

    python benchmarks/eval_table.py --model runs/default/model.pt \\
        --pairs data/eval1024 --pairs data/eval4096 > eval_table.md

Each pair is decoded once per set and its input scores computed once; every method then runs
on it (one warm-up call per method on the set's first pair, not timed). Progress goes to
stderr, the table to stdout. Not run in tests (minutes per 4096 set on CPU).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
from functools import partial
from pathlib import Path

import cv2
import torch

from abpn_cli.engine import EngineError, RetouchOptions, default_model_path, load_model
from abpn_cli.training import evaluate as ev
from abpn_cli.training.eval_baselines import BASELINES, make_baseline
from abpn_cli.training.eval_report import EvalSummary, summarize

HEADER = "| method | set | PSNR in→out (dB) | SSIM in→out | locality (1/255) | s/image |"
RULE = "|---|---|---|---|---|---|"


def _fmt(v: float, spec: str) -> str:
    return "n/a" if math.isnan(v) else format(v, spec)


def table_row(method: str, set_name: str, s: EvalSummary) -> str:
    """One markdown row from a summary."""
    return (
        f"| {method} | {set_name} | {_fmt(s.psnr_in, '.2f')} → {_fmt(s.psnr_out, '.2f')} "
        f"| {_fmt(s.ssim_in, '.4f')} → {_fmt(s.ssim_out, '.4f')} "
        f"| {_fmt(s.locality_255, '.3f')} | {_fmt(s.seconds, '.3f')} |"
    )


def _progress(set_name: str, method: str, r: ev.FileResult) -> None:
    print(
        f"{set_name} {method} {r.name}: PSNR {r.psnr_in:.2f} -> {r.psnr_out:.2f} "
        f"locality {r.locality_255:.3f} ({r.seconds:.2f} s)",
        file=sys.stderr,
        flush=True,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pairs", type=Path, action="append", required=True, help="eval set (repeat)")
    p.add_argument(
        "--model", type=Path, action="append", help="model file (repeat; default: shipped)"
    )
    p.add_argument("--no-model", action="store_true", help="baselines only")
    p.add_argument("--baselines", default=",".join(BASELINES), help="comma list (empty: none)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    p.add_argument("--levels", default="auto", help="auto or 0..8")
    p.add_argument("--threads", type=int, default=0, help="torch/OpenCV threads (0: default)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    levels = None if args.levels == "auto" else int(args.levels)
    methods: dict[str, ev.Method] = {}
    devices = set()
    if not args.no_model:
        for path in args.model or [default_model_path()]:
            try:
                loaded = load_model(path, args.device)
            except EngineError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 4
            methods[f"ABPN ({Path(path).stem})"] = ev.model_method(loaded, RetouchOptions(levels))
            devices.add(str(loaded.device))
    for name in filter(None, (b.strip() for b in args.baselines.split(","))):
        if name not in BASELINES:
            print(f"error: unknown baseline {name!r} ({', '.join(BASELINES)})", file=sys.stderr)
            return 2
        methods[name] = make_baseline(name)
    if not methods:
        print("error: nothing to score", file=sys.stderr)
        return 2

    rows = []
    for pairs_dir in args.pairs:
        try:
            pairs = ev.list_pairs(pairs_dir)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

        results = ev.evaluate(
            pairs, methods, warmup=True, on_file=partial(_progress, pairs_dir.name)
        )
        for method, files in results.items():
            rows.append(table_row(method, pairs_dir.name, summarize(files)))

    print(HEADER)
    print(RULE)
    print("\n".join(rows))
    cpu = platform.processor() or platform.machine()
    where = ", ".join(sorted(devices)) or "cpu"
    print(
        f"\n{len(methods)} method(s); model on {where}, torch threads {torch.get_num_threads()}, "
        f"{cpu}; s/image: method only (no decode, no scoring), after one warm-up.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
