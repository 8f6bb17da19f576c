"""Command-line interface: parses options, calls the package, prints. No logic lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

app = typer.Typer(
    name="abpn",
    help="Batch local retouching of ultra-high-resolution photos with ABPN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _err(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.ckpt) to export."),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
) -> None:
    """Export a training checkpoint to a TorchScript model file for `abpn retouch --model`."""
    from abpn_cli.engine import ModelCard, save_model_file
    from abpn_cli.model import ABPN
    from abpn_cli.training.checkpoint import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    model = ABPN(ckpt.model_config())
    model.load_state_dict(ckpt.model)
    card = ModelCard(
        kind="export", steps=ckpt.step, init_from=checkpoint.name, details={"metrics": ckpt.metrics}
    )
    sha = save_model_file(model, out, card)
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


def _cluster_driver(cluster: str, address: str | None, workers: int | None):
    """None for a local run; for `--cluster ray` the Ray driver, or a one-line exit 2/4."""
    if cluster.lower() == "none":
        return None
    if cluster.lower() != "ray":
        raise _err(f"--cluster must be none or ray, not {cluster!r}", EXIT_USAGE)
    from abpn_cli.batch.cluster import ClusterSettings, RayDriver, import_ray
    from abpn_cli.batch.errors import BatchEnvironmentError

    try:
        settings = ClusterSettings(address=address, workers=workers)
    except ValueError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    try:
        import_ray()
    except BatchEnvironmentError as exc:
        typer.echo(f"error: {exc}", err=True)  # one unwrapped line, as cron logs want it
        raise typer.Exit(EXIT_ENVIRONMENT) from exc
    return RayDriver(settings)


@app.command()
def retouch(
    inputs: list[Path] = typer.Argument(..., help="Photos and/or folders (walked recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; mirrors the input tree."),
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped)."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N"),
    levels: str = typer.Option("auto", "--levels", help="Pyramid levels: auto or 0..8."),
    strength: float = typer.Option(1.0, "--strength", help="Opacity of the edit, 0..1."),
    sensitivity: float | None = typer.Option(
        None,
        "--sensitivity",
        help="0..1 [0.5]: higher catches fainter spots, lower avoids false positives.",
    ),
    dump_mask: bool = typer.Option(False, "--dump-mask", help="Write OUT/_qa/<name>.mask.png."),
    dump_blend: bool = typer.Option(False, "--dump-blend", help="Write OUT/_qa/<name>.blend.png."),
    fmt: str = typer.Option("keep", "--format", help="keep|jpg|jpeg|png|tif|tiff|webp"),
    jpeg_quality: int | None = typer.Option(
        None, "--jpeg-quality", help="1..100 (default: close to the source)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo files already done."),
    report: Path | None = typer.Option(None, "--report", help="Write a JSON report here."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the plan; write nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    max_megapixels: float = typer.Option(
        400.0, "--max-megapixels", help="Refuse larger images (image bombs)."
    ),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Walk subfolders."),
    allow_out_inside_input: bool = typer.Option(
        False, "--allow-out-inside-input", help="Allow OUT inside an input folder (skipped)."
    ),
    accept_damaged: bool = typer.Option(
        False, "--accept-damaged", help="Process damaged JPEGs anyway (marked in the report)."
    ),
    tile: int | None = typer.Option(None, "--tile", help="Advanced: level-0 tile side."),
    review_page: bool = typer.Option(
        False, "--review", help="Then write the offline review page OUT/_review/index.html."
    ),
    cluster: str = typer.Option(
        "none", "--cluster", help="none|ray: spread the files over a Ray cluster's workers."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Ray cluster (host:port); 'local' starts one here.",
        show_default="RAY_ADDRESS",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", help="Ray workers (default: one per GPU, else one per CPU)."
    ),
) -> None:
    """Retouch photos into OUT; resumable, never touches the inputs (see docs/PRODUCT.md)."""
    from abpn_cli.batch import (
        BatchSettings,
        BatchUsageError,
        ConsoleUI,
        parse_levels,
        run_batch,
        summary_line,
    )

    try:
        settings = BatchSettings(
            inputs=tuple(inputs),
            out=out,
            model=model,
            device=device,
            levels=parse_levels(levels),
            strength=strength,
            dump_mask=dump_mask,
            dump_blend=dump_blend,
            format=fmt.lower(),
            jpeg_quality=jpeg_quality,
            overwrite=overwrite,
            report=report,
            dry_run=dry_run,
            quiet=quiet,
            max_megapixels=max_megapixels,
            recursive=recursive,
            allow_out_inside_input=allow_out_inside_input,
            accept_damaged=accept_damaged,
            **({} if tile is None else {"tile": tile}),
            **({} if sensitivity is None else {"sensitivity": sensitivity}),
        )
    except BatchUsageError as exc:
        typer.echo(f"error: {exc}", err=True)  # unwrapped: cron logs get grepped
        raise typer.Exit(EXIT_USAGE) from exc
    driver = _cluster_driver(cluster, ray_address, ray_workers) if not dry_run else None
    outcome = run_batch(settings, ConsoleUI(quiet=quiet), driver=driver)
    if outcome.exit_code and outcome.message:
        typer.echo(f"error: {outcome.message}", err=True)
    elif not quiet and outcome.message:
        typer.echo(outcome.message, err=True)
    if not quiet and outcome.summary is not None and outcome.exit_code in (0, 1, 130):
        typer.echo(summary_line(outcome.summary))
    if review_page and outcome.exit_code in (0, 1) and not dry_run:
        from abpn_cli.batch.review import ReviewError, ReviewSettings, run_review

        try:
            page = run_review(ReviewSettings(out=out, report=report)).page
            if not quiet:
                typer.echo(f"review: {page}")
        except ReviewError as exc:
            typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(outcome.exit_code)


@app.command()
def train(
    synthetic: list[Path] | None = typer.Option(
        None, "--synthetic", help="Folder of clean photos to add synthetic defects to (repeatable)."
    ),
    pairs: Path | None = typer.Option(None, "--pairs", help="Folder of real before/after pairs."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder (model: OUT/model.pt), or X.pt (run folder X.run/)."
    ),
    steps: int | None = typer.Option(None, help="Optimizer steps [1400]."),
    crop: int | None = typer.Option(None, help="Crop side, a multiple of 2^(levels+6) [512]."),
    levels: int | None = typer.Option(None, help="Pyramid levels while training [1]."),
    batch: int | None = typer.Option(None, help="Batch size [8]."),
    lr: float | None = typer.Option(None, help="Adam learning rate [5e-4]."),
    lr_decay_at: float | None = typer.Option(
        None, help="lr /10 after this fraction of --steps (or of --max-minutes) [0.5]."
    ),
    max_minutes: float | None = typer.Option(
        None, help="Time budget: stop (validated, checkpointed, exported) after this long."
    ),
    seed: int | None = typer.Option(None, help="Seed: same seed, same run [0]."),
    val_every: int | None = typer.Option(None, help="Validate + preview every N steps [100]."),
    checkpoint_every: int | None = typer.Option(None, help="Checkpoint every N steps [100]."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT's last checkpoint."),
    threads: int | None = typer.Option(None, help="CPU threads [2]."),
    adv_weight: float | None = typer.Option(None, help="Adversarial weight, 0 = no GAN [0.1]."),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Fine-tune from a checkpoint or model file."
    ),
) -> None:
    """Train (or fine-tune) ABPN; Ctrl-C saves a checkpoint, --resume continues it exactly."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from abpn_cli.training.losses import LossWeights
    from abpn_cli.training.trainer import (
        TrainDivergedError,
        TrainEvent,
        TrainInitError,
        TrainUsageError,
        settings_for_run,
    )
    from abpn_cli.training.trainer import train as run_training

    given = {
        "photos": list(synthetic) if synthetic else None,
        "pairs": pairs,
        "steps": steps,
        "crop": crop,
        "levels": levels,
        "batch": batch,
        "lr": lr,
        "lr_decay_at": lr_decay_at,
        "max_seconds": None if max_minutes is None else max_minutes * 60.0,
        "seed": seed,
        "val_every": val_every,
        "checkpoint_every": checkpoint_every,
        "threads": threads,
        "init_from": init_from,
        "weights": None if adv_weight is None else LossWeights(adv=adv_weight),
    }
    console = Console()
    tty = console.is_terminal
    bar = Progress(
        TextColumn("step {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not tty,
    )
    task = bar.add_task("train", total=None, info="")

    def show(ev: TrainEvent) -> None:
        loss = " ".join(f"{k} {v:.4f}" for k, v in ev.losses.items())
        if ev.kind == "step":
            info = f"{loss} | {ev.steps_per_s:.2f} it/s lr {ev.lr:.1e}"
            bar.update(task, completed=ev.step, total=ev.total_steps, info=info)
            if not tty and (ev.step % 10 == 0 or ev.step == ev.total_steps):
                eta = f"{ev.eta_s / 60:.1f} min"
                print(f"step {ev.step}/{ev.total_steps} {info} eta {eta}", flush=True)
        elif ev.kind == "val" and ev.val is not None:
            v = ev.val
            bar.console.print(
                f"val @ {v.step}: PSNR input {v.psnr_input:.2f} dB -> output "
                f"{v.psnr_output:.2f} dB, change outside edits {v.locality_255:.2f}/255 "
                f"({v.preview})",
                highlight=False,
                soft_wrap=True,
            )
        elif ev.kind == "checkpoint" and not tty:
            print(f"checkpoint @ {ev.step}: {ev.path}", flush=True)
        elif ev.kind == "start":
            bar.update(task, completed=ev.step, total=ev.total_steps)
        elif ev.kind == "interrupted":
            bar.console.print(
                f"interrupted at step {ev.step}; saved {ev.path}; --resume to go on",
                highlight=False,
                soft_wrap=True,
            )

    try:
        settings = settings_for_run(out, resume, given)
        with bar:
            report = run_training(settings, show)
    except TrainUsageError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    except TrainInitError as exc:
        raise _err(str(exc), EXIT_ENVIRONMENT) from exc
    except TrainDivergedError as exc:
        raise _err(str(exc), EXIT_FAILED) from exc
    val = report.val
    saved = f"model {report.model_path}" if report.model_path else f"{report.checkpoint}"
    console.print(
        f"{report.steps_done}/{report.total_steps} steps in {report.wall_s / 60:.1f} min "
        f"({report.s_per_step:.2f} s/step); "
        + (f"val PSNR {val.psnr_input:.2f} -> {val.psnr_output:.2f} dB; " if val else "")
        + saved,
        highlight=False,
        soft_wrap=True,
    )
    if report.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
def review(
    out: Path = typer.Argument(..., help="A batch's OUT folder."),
    report: Path | None = typer.Option(
        None, "--report", help="The batch's report [OUT/.abpn/last-report.json]."
    ),
    crops: int = typer.Option(3, "--crops", help="100 % crops per file."),
) -> None:
    """Write OUT/_review/index.html: an offline page over a finished batch."""
    from abpn_cli.batch.review import ReviewError, ReviewSettings, run_review

    try:
        result = run_review(ReviewSettings(out=out, report=report, crops=crops))
    except ReviewError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    for problem in result.problems:
        typer.echo(f"warning: no pictures for {problem}", err=True)
    typer.echo(f"{result.page} ({result.shown} files, {result.failed} failed)")


@app.command()
def watch(
    folder: Path = typer.Argument(..., help="Hot folder the camera/tether software writes to."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; mirrors the hot folder."),
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped)."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N"),
    strength: float = typer.Option(1.0, "--strength", help="Opacity of the edit, 0..1."),
    sensitivity: float | None = typer.Option(None, "--sensitivity", help="0..1 [0.5]."),
    dump_mask: bool = typer.Option(False, "--dump-mask", help="Write OUT/_qa/<name>.mask.png."),
    fmt: str = typer.Option("keep", "--format", help="keep|jpg|jpeg|png|tif|tiff|webp"),
    report: Path | None = typer.Option(None, "--report", help="JSON report, rewritten per round."),
    interval: float = typer.Option(2.0, help="Seconds between looks at the folder."),
    settle: float = typer.Option(
        3.0, help="Without a close event, a file is complete once unchanged this long (s)."
    ),
    poll: bool = typer.Option(False, "--poll", help="No file-system events (network shares)."),
    max_idle: float | None = typer.Option(None, help="Stop after this long with nothing new."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Retouch photos as they arrive in FOLDER (tethered capture); Ctrl-C stops (exit 130)."""
    from abpn_cli.batch import BatchSettings, BatchUsageError, ConsoleUI
    from abpn_cli.batch.watch import WatchSettings, run_watch

    try:
        settings = WatchSettings(
            batch=BatchSettings(
                inputs=(folder,),
                out=out,
                model=model,
                device=device,
                strength=strength,
                dump_mask=dump_mask,
                format=fmt.lower(),
                report=report,
                quiet=quiet,
                **({} if sensitivity is None else {"sensitivity": sensitivity}),
            ),
            interval=interval,
            settle=settle,
            max_idle=max_idle,
            poll=poll,
        )
    except BatchUsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc

    def say(line: str) -> None:
        if not quiet:
            typer.echo(line, err=True)

    say(f"watching {folder} -> {out} (Ctrl-C to stop)")
    raise typer.Exit(run_watch(settings, lambda: ConsoleUI(quiet=quiet), say))


@app.command("train-dust")
def train_dust_command(
    photos: Path = typer.Option(..., "--photos", help="Folder of clean training photos."),
    holdout: Path | None = typer.Option(None, "--holdout", help="Folder of held-out photos."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder; model: OUT/model.pt."),
    max_minutes: float | None = typer.Option(None, help="Time budget in minutes."),
    steps: int | None = typer.Option(None, help="Optimizer steps at most [20000]."),
    batch: int | None = typer.Option(None, help="Crops per step [24]."),
    crop: int | None = typer.Option(None, help="Thumbnail crop side, multiple of 64 [128]."),
    lr: float | None = typer.Option(None, help="Adam learning rate, /10 after 80 % [1e-3]."),
    cache: Path | None = typer.Option(None, help="Thumbnail cache folder [OUT/../thumbcache]."),
    compile_: bool = typer.Option(True, "--compile/--no-compile", help="torch.compile."),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Start from this model file (e.g. the shipped default)."
    ),
) -> None:
    """Train the dust model's LRL on physical dust (resumes OUT/last.ckpt if present)."""
    import torch

    from abpn_cli.training.dust_data import DustDataError
    from abpn_cli.training.dust_train import DustTrainError, DustTrainSettings, train_dust

    def folder(path: Path | None) -> tuple[Path, ...]:
        if path is None:
            return ()
        if not path.is_dir():
            raise _err(f"{path} is not a folder", EXIT_USAGE)
        return tuple(sorted(p for p in path.iterdir() if p.is_file()))

    torch.set_num_threads(max(1, torch.get_num_threads()))
    try:
        settings = DustTrainSettings(
            photos=folder(photos),
            holdout=folder(holdout),
            out=out,
            cache_dir=cache or out.parent / "thumbcache",
            max_minutes=max_minutes,
            compile=compile_,
            init_from=init_from,
            **{
                k: v
                for k, v in {"steps": steps, "batch": batch, "crop": crop, "lr": lr}.items()
                if v is not None
            },
        )
        score = train_dust(settings, lambda line: typer.echo(line))
    except (DustTrainError, DustDataError) as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    except KeyboardInterrupt as exc:
        typer.echo("interrupted; rerun the same command to continue from OUT/last.ckpt", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    if score is not None:
        typer.echo(f"last validation: {100 * (1 - score.left):.1f} % of the dust error removed")


@app.command("make-evalset")
def make_evalset(
    photos: list[Path] = typer.Option(
        ..., "--photos", help="Clean photo or folder (repeatable; folders walked, sorted)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Eval folder: OUT/{before,after,region}."),
    size: int = typer.Option(1024, "--size", min=64, help="Side of the square pairs."),
    seed: int = typer.Option(0, "--seed", help="Same photos + size + seed: same bytes."),
    count_per_photo: int = typer.Option(1, "--count-per-photo", min=1, help="Pairs per photo."),
) -> None:
    """Write a deterministic held-out eval set of synthetic-defect pairs for `abpn eval`."""
    from abpn_cli.training.data import ImageLoadError, find_photos, make_eval_set

    try:
        found = find_photos(photos)
    except FileNotFoundError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    if not found:
        raise _err(f"no photos under {', '.join(map(str, photos))}", EXIT_USAGE)
    try:
        items = make_eval_set(found, out, size, seed, count_per_photo)
    except ImageLoadError as exc:
        raise _err(str(exc), EXIT_FAILED) from exc
    upscaled = sum(it.upscaled for it in items)
    note = f"; {upscaled} upscaled from smaller photos" if upscaled else ""
    Console().print(
        f"wrote {len(items)} pairs of {size}x{size} to {out} (seed {seed}){note}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("eval")
def eval_command(
    pairs: Path = typer.Option(
        ..., "--pairs", help="Folder with before/, after/ and optional region/."
    ),
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped)."),
    levels: str = typer.Option("auto", "--levels", help="Pyramid levels: auto or 0..8."),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N"),
    baseline: str = typer.Option(
        "none",
        "--baseline",
        help="Score a baseline instead of the model: none|identity|bilateral|edge-preserving.",
    ),
    report: Path | None = typer.Option(None, "--report", help="Write a JSON report here."),
    warmup: bool = typer.Option(
        False, "--warmup", help="Run once untimed first (TorchScript optimises on first calls)."
    ),
) -> None:
    """PSNR/SSIM (input and output vs target) and locality of the model or a baseline."""
    from abpn_cli.batch.settings import BatchUsageError, parse_levels
    from abpn_cli.engine import EngineError, RetouchOptions, load_model
    from abpn_cli.training import evaluate as ev

    try:
        level_count = parse_levels(levels)
    except BatchUsageError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    if baseline != "none" and baseline not in ev.BASELINES:
        names = "|".join(["none", *ev.BASELINES])
        raise _err(f"--baseline must be one of {names}: {baseline!r}", EXIT_USAGE)
    try:
        pair_list = ev.list_pairs(pairs)
    except ValueError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    settings: dict = {"pairs": str(pairs), "method": "model" if baseline == "none" else baseline}
    model_info = None
    if baseline == "none":
        try:
            loaded = load_model(model, device)
        except EngineError as exc:
            raise _err(str(exc), EXIT_ENVIRONMENT) from exc
        options = RetouchOptions(levels=level_count)
        method = ev.model_method(loaded, options)
        model_info = {"path": str(loaded.path), "sha256": loaded.sha256}
        settings |= {
            "levels": "auto" if level_count is None else level_count,
            "device": str(loaded.device),
            "tile": options.tile,
            "skip_untouched": options.skip_untouched,
            "strength": options.strength,
        }
    else:
        method = ev.make_baseline(baseline)
        settings["baseline_params"] = ev.baseline_settings(baseline)
    settings |= {
        "region_threshold": ev.REGION_THRESHOLD,
        "psnr_cap": ev.PSNR_CAP,
        "warmup": warmup,
    }
    err = Console(stderr=True)

    def progress(_name: str, r: ev.FileResult) -> None:
        line = f"{r.name}: PSNR {r.psnr_in:.2f} -> {r.psnr_out:.2f} dB ({r.seconds:.2f} s)"
        err.print(line, highlight=False, soft_wrap=True)

    try:
        files = ev.evaluate(pair_list, {"m": method}, warmup=warmup, on_file=progress)["m"]
    except ValueError as exc:  # EvalDataError (bad pair), or options the image cannot take
        raise _err(str(exc), EXIT_USAGE) from exc
    except EngineError as exc:
        raise _err(str(exc), EXIT_ENVIRONMENT) from exc
    result = ev.EvalReport(model_info, settings, files)
    table = Table(*ev.TABLE_COLUMNS, title=f"abpn eval: {settings['method']}")
    for f in files:
        table.add_row(*ev.file_row(f))
    table.add_row(*ev.summary_row(result.summary), style="bold")
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    if report is not None:
        ev.write_report(result, report)


@app.command()
def learn(
    pairs: Path | None = typer.Option(
        None, "--pairs", help="Folder of exemplar pairs: DIR/before/<name>, DIR/after/<name>."
    ),
    before: list[Path] | None = typer.Option(
        None, "--before", help="An exemplar's before file (repeatable, paired with --after)."
    ),
    after: list[Path] | None = typer.Option(
        None, "--after", help="An exemplar's after file (repeatable, same order as --before)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
    base: Path | None = typer.Option(
        None, "--from", help="Model file or checkpoint to start from (default: shipped)."
    ),
    minutes: float | None = typer.Option(
        None, "--minutes", help="Time budget for the whole command [4, or none with --steps]."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Stop after N optimizer steps."),
    threads: int = typer.Option(2, "--threads", help="CPU threads."),
    seed: int = typer.Option(0, "--seed", help="Seed for crops and augmentation."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam lr; lr/10 for the last 30 %."),
    batch: int = typer.Option(4, "--batch", help="Crops per step."),
    max_side: int = typer.Option(
        1024, "--max-side", help="Pairs are read downscaled to this long side."
    ),
    holdout: bool = typer.Option(
        True, "--holdout/--no-holdout", help="With >= 3 pairs, keep the last one out to score."
    ),
) -> None:
    """Learn a retouch from a few exemplar before/after pairs; writes a normal model file."""
    import time

    started_at = time.perf_counter()  # --minutes counts from here, imports included
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from abpn_cli.training import learn as lrn
    from abpn_cli.training.trainer import TrainDivergedError, TrainInitError

    if (before or after) and len(before or []) != len(after or []):
        n_b, n_a = len(before or []), len(after or [])
        raise _err(f"--before and --after must come in pairs (got {n_b} and {n_a})", EXIT_USAGE)
    if pairs is None and not before:
        raise _err("give --pairs DIR or --before A --after B (repeatable)", EXIT_USAGE)
    console = Console()
    try:
        pair_list = lrn.pairs_from_dir(pairs) if pairs is not None else []
        pair_list += list(zip(before or [], after or [], strict=True))
        settings = lrn.LearnSettings(
            out=out,
            pairs=pair_list,
            base=base,
            minutes=minutes if minutes is not None or steps is not None else 4.0,
            steps=steps,
            batch=batch,
            lr=lr,
            seed=seed,
            threads=threads,
            max_side=max_side,
            holdout=holdout,
            started_at=started_at,
        )
    except lrn.LearnError as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = bar.add_task("learn", total=None, info="")
    last_print = [0.0]

    def show(ev: lrn.LearnEvent) -> None:
        if ev.kind == "step":
            info = f"step {ev.step} loss {ev.losses.get('total', 0):.4f} lr {ev.lr:.0e}"
            if ev.budget_s is not None:
                bar.update(task, completed=min(ev.elapsed_s, ev.budget_s), total=ev.budget_s)
            else:
                bar.update(task, completed=ev.step, total=ev.total_steps)
            bar.update(task, info=info)
            if not console.is_terminal and ev.elapsed_s - last_print[0] >= 15:
                last_print[0] = ev.elapsed_s
                print(f"{ev.elapsed_s:5.0f} s  {info}", flush=True)
        else:
            bar.console.print(ev.message, highlight=False, soft_wrap=True)

    try:
        with bar:
            report = lrn.learn(settings, show)
    except lrn.LearnInterrupted as exc:
        where = f"; the state so far is in {exc.checkpoint}" if exc.checkpoint else ""
        Console(stderr=True).print(f"{exc}{where}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    except KeyboardInterrupt as exc:
        Console(stderr=True).print("interrupted; no model written", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    except (lrn.LearnUsageError, lrn.PairCheckError) as exc:
        raise _err(str(exc), EXIT_USAGE) from exc
    except (lrn.BaseModelError, TrainInitError) as exc:
        raise _err(str(exc), EXIT_ENVIRONMENT) from exc
    except (lrn.LearnError, TrainDivergedError) as exc:
        raise _err(str(exc), EXIT_FAILED) from exc
    h = report.heldout
    score = (
        f"; held out {h.pair}: {h.psnr_nothing:.2f} dB nothing, {h.psnr_base:.2f} dB base, "
        f"{h.psnr_learned:.2f} dB learned"
        if h is not None and h.psnr_learned is not None
        else ""
    )
    console.print(
        f"learned {report.steps} steps in {report.seconds / 60:.1f} min{score}\n"
        f"wrote {report.model_path} (sha256 {report.model_sha256}) and {report.card_path}; "
        f"use it with: abpn retouch --model {report.model_path} ...",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    app()
