"""Command-line interface: parses options, calls the package, prints. No logic lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="abpn",
    help="Batch local retouching of ultra-high-resolution photos with ABPN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USAGE = 2
EXIT_ENVIRONMENT = 4


def _err(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.ckpt) to export."),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
) -> None:
    """Export a training checkpoint to a TorchScript model file for `abpn retouch --model`."""
    from abpn_cli.engine import save_model_file
    from abpn_cli.model import ABPN
    from abpn_cli.training.checkpoint import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    model = ABPN(ckpt.model_config())
    model.load_state_dict(ckpt.model)
    meta = {"trained_steps": ckpt.step, "metrics": ckpt.metrics, "source": checkpoint.name}
    sha = save_model_file(model, out, meta)
    Console().print(f"wrote {out} (sha256 {sha})")


@app.command()
def doctor(
    model: Path | None = typer.Option(None, "--model", help="Model file to check."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N"),
) -> None:
    """Check torch, devices, codecs and the model; exit 4 if something required fails."""
    from abpn_cli.doctor import run_checks

    checks = run_checks(model, device)
    table = Table("check", "status", "detail")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]--[/]")
        table.add_row(c.name, status, c.detail)
    Console().print(table)
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(EXIT_ENVIRONMENT)


@app.command()
def bench(
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped)."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N"),
    half: bool = typer.Option(False, "--fp16", help="Half precision (CUDA only)."),
    sizes: str = typer.Option(
        "512x512,1024x1024,2048x2048,4096x4096,6000x4000", help="Comma list of WxH."
    ),
    repeats: int = typer.Option(3, min=1, help="Timed runs per size (after one warm-up)."),
    skip: bool = typer.Option(
        False, "--skip-untouched/--dense", help="Let the mask skip tiles (default: dense)."
    ),
    tile: int = typer.Option(512, help="Level-0 tile side."),
    threads: int = typer.Option(0, help="CPU threads (0: torch default)."),
) -> None:
    """Runtime and peak memory per resolution (the shape of the paper's Table 3)."""
    from abpn_cli.engine import EngineError, default_model_path, inspect_model_file
    from abpn_cli.engine.bench import run_bench

    path = model or default_model_path()
    try:
        inspect_model_file(path)
        parsed = tuple(
            (int(s.split("x")[1]), int(s.split("x")[0])) for s in sizes.lower().split(",")
        )
    except EngineError as exc:
        raise _err(str(exc), EXIT_ENVIRONMENT) from exc
    except (ValueError, IndexError) as exc:
        raise _err(f"--sizes must look like 512x512,6000x4000: {sizes!r}", EXIT_USAGE) from exc
    console = Console(width=None if sys.stdout.isatty() else 140)
    table = Table(
        "resolution",
        "l",
        "runtime (median)",
        "min",
        "peak memory",
        "model+runtime",
        "tiles skipped",
        "device",
        title="abpn bench",
    )
    try:
        for r in run_bench(path, device, half, parsed, repeats, skip, tile, threads):
            mem = "RSS" if r.device == "cpu" else "CUDA alloc"
            table.add_row(
                f"{r.width}x{r.height}",
                str(r.levels),
                f"{r.seconds_median:.3f} s",
                f"{r.seconds_min:.3f} s",
                f"{r.peak_mb:.0f} MB {mem}",
                f"{r.baseline_mb:.0f} MB",
                f"{r.tiles_skipped}/{r.tiles_total}",
                f"{r.device} {r.dtype}",
            )
            if not sys.stdout.isatty():
                console.print(f"{r.width}x{r.height} done: {r.seconds_median:.3f} s")
    except EngineError as exc:
        raise _err(str(exc), EXIT_ENVIRONMENT) from exc
    console.print(table)


def main() -> None:
    app()
