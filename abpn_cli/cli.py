"""Command-line interface. Each command parses its options into a runner's settings, calls the
runner, renders what it returns and exits; nothing else lives here. The runners, their
defaults, the settings builders and the exit code of each exception they let through sit
beside the code they drive (`batch/`, `training/commands.py`, `training/eval_command.py`,
`engine/bench.py`), the renderers beside what they show (`batch/progress.py`,
`training/progress.py`, `doctor.checks_table`, `engine/bench.bench_cells`).

Why this file is still over 400 lines: the twelve commands' signatures, which Typer reads the
options from, are some 200 lines -- about a hundred options with their help texts (those
several commands share are declared once, after `_exits`); the bodies are parse, run, render,
exit, 10 to 25 lines each."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from abpn_cli.exitcodes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ExitRule,
    rule_for,
)
from abpn_cli.formats import FORMAT_CHOICES
from abpn_cli.training.learn_settings import default as learn_default

# the order `abpn --help` lists the commands in: the daily work first, the tools after
COMMAND_ORDER = (
    "retouch",
    "review",
    "watch",
    "dust-profile",
    "learn",
    "doctor",
    "bench",
    "eval",
    "make-evalset",
    "train-dust",
    "train",
    "export",
)


class _Ordered(typer.core.TyperGroup):
    def list_commands(self, ctx: typer.Context) -> list[str]:
        """COMMAND_ORDER's order; a command missing from it goes last."""
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda n: rank.get(n, len(rank)))


app = typer.Typer(
    cls=_Ordered,
    name="abpn",
    help="Batch local retouching of ultra-high-resolution photos with ABPN.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: rich's option tables cut flags and paths short ("OUT/_qa/<name>.mask…")
    # in an 80-column terminal; click's wraps them whole
    rich_markup_mode=None,
)


def _err(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def _exits(rules: Sequence[ExitRule]) -> Iterator[None]:
    """Show an exception a runner documents in `rules` and exit with its code."""
    try:
        yield
    except BaseException as exc:
        rule = rule_for(exc, rules)
        if rule is None:
            raise
        if rule.notice is None:
            raise _err(str(exc), rule.code) from exc
        typer.echo(rule.notice(exc), err=True)  # one unwrapped line, as logs want it
        raise typer.Exit(rule.code) from exc


# Options that several commands declare alike: each one's default and help text, once.
_MODEL = typer.Option(None, "--model", help="Model file (default: shipped).")
_DEVICE = typer.Option("auto", "--device", help="auto|cpu|cuda|cuda:N")
_LEVELS = typer.Option("auto", "--levels", help="Pyramid levels: auto or 0..8.")
_REPORT = typer.Option(None, "--report", help="Write a JSON report here.")
_STRENGTH = typer.Option(1.0, "--strength", help="Opacity of the edit, 0..1.")
_SENSITIVITY = typer.Option(
    None,
    "--sensitivity",
    help="0..1 [0.05, or the model file's own]: higher catches fainter spots, lower avoids "
    "false positives.",
)
_DUMP_MASK = typer.Option(False, "--dump-mask", help="Write OUT/_qa/<name>.mask.png.")
_FORMAT = typer.Option("keep", "--format", help="|".join(FORMAT_CHOICES))
_QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing but errors.")
_DUST_PROFILE = typer.Option(
    None, "--dust-profile", help="Divide this sensor's dust out first (abpn dust-profile)."
)


@app.command(short_help="Export a training checkpoint as a model file.")
def export(
    checkpoint: Path = typer.Argument(..., help="Training checkpoint (.ckpt) to export."),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
) -> None:
    """Export a training checkpoint to a TorchScript model file for `abpn retouch --model`."""
    from abpn_cli.training.commands import EXPORT_EXITS, run_export

    with _exits(EXPORT_EXITS):
        report = run_export(checkpoint, out)
    typer.echo(f"wrote {report.path} (sha256 {report.sha256})")  # one line, never wrapped


@app.command(short_help="Check torch, codecs, devices and the model.")
def doctor(
    model: Path | None = typer.Option(None, "--model", help="Model file to check."),
    device: str = _DEVICE,
) -> None:
    """Check torch, devices, codecs and the model; exit 4 if something required fails."""
    from abpn_cli.doctor import checks_table, exit_code, run_checks

    checks = run_checks(model, device)
    Console().print(checks_table(checks))
    raise typer.Exit(exit_code(checks))


@app.command(short_help="Runtime and peak memory per resolution.")
def bench(
    model: Path | None = _MODEL,
    device: str = _DEVICE,
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
    from abpn_cli.engine.bench import (
        BENCH_COLUMNS,
        BENCH_EXITS,
        BenchSettings,
        bench_cells,
        measure,
    )

    settings = BenchSettings(model, device, half, sizes, repeats, skip, tile, threads)
    console = Console(width=None if sys.stdout.isatty() else 140)
    table = Table(*BENCH_COLUMNS, title="abpn bench")
    with _exits(BENCH_EXITS):
        for r in measure(settings):
            table.add_row(*bench_cells(r))
            if not sys.stdout.isatty():
                console.print(f"{r.width}x{r.height} done: {r.seconds_median:.3f} s")
    console.print(table)


@app.command(short_help="Retouch photos into OUT (resumable).")
def retouch(
    inputs: list[Path] = typer.Argument(
        ..., metavar="PHOTOS", help="Photos and/or folders (walked recursively)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; mirrors the input tree."),
    model: Path | None = _MODEL,
    device: str = _DEVICE,
    levels: str = _LEVELS,
    strength: float = _STRENGTH,
    sensitivity: float | None = _SENSITIVITY,
    dust_profile: Path | None = _DUST_PROFILE,
    dump_mask: bool = _DUMP_MASK,
    dump_blend: bool = typer.Option(False, "--dump-blend", help="Write OUT/_qa/<name>.blend.png."),
    fmt: str = _FORMAT,
    jpeg_quality: int | None = typer.Option(
        None, "--jpeg-quality", help="1..100 (default: close to the source)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo files already done."),
    report: Path | None = _REPORT,
    dry_run: bool = typer.Option(False, "--dry-run", help="List the plan; write nothing."),
    quiet: bool = _QUIET,
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
    given = dict(locals())  # BatchSettings' fields, name for name, but for _RETOUCH_OWN
    from abpn_cli.batch import ConsoleUI, run_batch
    from abpn_cli.batch.cluster import CLUSTER_EXITS, driver_for
    from abpn_cli.batch.progress import review_after_batch, show_outcome
    from abpn_cli.batch.settings import SETTINGS_EXITS, batch_settings

    with _exits(SETTINGS_EXITS):
        settings = batch_settings(given, own=_RETOUCH_OWN)
    with _exits(CLUSTER_EXITS):
        driver = driver_for(cluster, ray_address, ray_workers) if not dry_run else None
    outcome = run_batch(settings, ConsoleUI(quiet=quiet), driver=driver)
    show_outcome(outcome, quiet)
    if review_page and outcome.exit_code in (EXIT_OK, EXIT_FAILED) and not dry_run:
        review_after_batch(out, report, quiet)
    raise typer.Exit(outcome.exit_code)


_RETOUCH_OWN = ("review_page", "cluster", "ray_address", "ray_workers")  # not BatchSettings'
_WATCH_OWN = ("folder", "interval", "settle", "poll", "max_idle")


@app.command(short_help="Train or fine-tune ABPN.")
def train(
    synthetic: list[Path] | None = typer.Option(
        None,
        "--synthetic",
        metavar="FOLDER",
        help="Folder of clean photos to add synthetic defects to (repeatable).",
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
    given = dict(locals())  # the parameters are TrainOptions' fields, name for name
    from abpn_cli.training.commands import TRAIN_EXITS, TrainOptions, train_settings
    from abpn_cli.training.progress import TrainConsole, train_summary
    from abpn_cli.training.trainer import train as run_training

    with _exits(TRAIN_EXITS):
        settings = train_settings(TrainOptions(**given))
        with TrainConsole() as ui:
            report = run_training(settings, ui.show)
    Console().print(train_summary(report), highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INTERRUPTED if report.interrupted else EXIT_OK)


@app.command(short_help="Write the offline review page of a batch.")
def review(
    out: Path = typer.Argument(..., help="A batch's OUT folder."),
    report: Path | None = typer.Option(
        None, "--report", help="The batch's report [OUT/.abpn/last-report.json]."
    ),
    crops: int = typer.Option(3, "--crops", help="100 % crops per file."),
) -> None:
    """Write OUT/_review/index.html: an offline page over a finished batch."""
    from abpn_cli.batch.review import REVIEW_EXITS, ReviewSettings, run_review

    with _exits(REVIEW_EXITS):
        result = run_review(ReviewSettings(out=out, report=report, crops=crops))
    for problem in result.problems:
        typer.echo(f"warning: no pictures for {problem}", err=True)
    typer.echo(f"{result.page} ({result.shown} files, {result.failed} failed)")


@app.command("dust-profile", short_help="Measure the sensor's dust for --dust-profile.")
def dust_profile(
    frames: list[Path] = typer.Argument(
        ...,
        metavar="FRAMES",
        help="Reference frame(s): a plain wall, grey card or clear sky, stopped down; with "
        "--learn, the shoot's own photos (files or folders).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The profile file to write (.npz)."),
    learn: bool = typer.Option(
        False,
        "--learn",
        help="Learn it from the spots the model finds again and again across the shoot.",
    ),
    model: Path | None = _MODEL,
    device: str = _DEVICE,
    sensitivity: float | None = typer.Option(
        None, "--sensitivity", help="0..1 [0.3]: the model's sensitivity while it learns."
    ),
) -> None:
    """Measure the sensor's dust shadows (reference frames, or --learn from the shoot) for
    retouch --dust-profile."""
    from abpn_cli.batch.sensor_profile import PROFILE_EXITS, ProfileSettings, run_dust_profile
    from abpn_cli.batch.shoot_profile import LEARN_EXITS, LearnSettings, run_learn_profile

    if learn:
        with _exits(LEARN_EXITS):
            done = run_learn_profile(LearnSettings(tuple(frames), out, model, device, sensitivity))
        for line in done.skipped:
            typer.echo(f"skipped {line}", err=True)
        profile = done.learned.profile
        typer.echo(
            f"the model ran on {done.used} frame(s): {done.learned.recurring} spot(s) recur"
            + (
                f", {done.learned.same_scene} left out (the same scene in every frame)"
                if done.learned.same_scene
                else ""
            )
        )
        if not done.learned.profile.spots:
            typer.echo("warning: no dust recurs across the shoot: the profile is empty", err=True)
    else:
        with _exits(PROFILE_EXITS):
            profile = run_dust_profile(ProfileSettings(tuple(frames), out))
    worst = max((s.attenuation for s in profile.spots), default=0.0)
    typer.echo(
        f"{out}: {len(profile.spots)} dust spots from {profile.frames} frame(s)"
        + (f", the darkest takes {100 * worst:.0f} % of the light" if profile.spots else "")
    )


@app.command(short_help="Retouch photos as they arrive (tethering).")
def watch(
    folder: Path = typer.Argument(..., help="Hot folder the camera/tether software writes to."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; mirrors the hot folder."),
    model: Path | None = _MODEL,
    device: str = _DEVICE,
    strength: float = _STRENGTH,
    sensitivity: float | None = _SENSITIVITY,
    dust_profile: Path | None = _DUST_PROFILE,
    dump_mask: bool = _DUMP_MASK,
    fmt: str = _FORMAT,
    report: Path | None = typer.Option(None, "--report", help="JSON report, rewritten per round."),
    interval: float = typer.Option(2.0, help="Seconds between looks at the folder."),
    settle: float = typer.Option(
        3.0, help="Without a close event, a file is complete once unchanged this long (s)."
    ),
    poll: bool = typer.Option(False, "--poll", help="No file-system events (network shares)."),
    max_idle: float | None = typer.Option(None, help="Stop after this long with nothing new."),
    quiet: bool = _QUIET,
) -> None:
    """Retouch photos as they arrive in FOLDER (tethered capture); Ctrl-C stops (exit 130)."""
    given = dict(locals())  # BatchSettings' fields, name for name, but for _WATCH_OWN
    from abpn_cli.batch import ConsoleUI
    from abpn_cli.batch.settings import SETTINGS_EXITS, batch_settings
    from abpn_cli.batch.watch import WatchSettings, run_watch

    with _exits(SETTINGS_EXITS):
        batch = batch_settings({"inputs": (folder,), **given}, own=_WATCH_OWN)
        settings = WatchSettings(
            batch=batch, interval=interval, settle=settle, max_idle=max_idle, poll=poll
        )

    def say(line: str) -> None:
        if not quiet:
            typer.echo(line, err=True)

    say(f"watching {folder} -> {out} (Ctrl-C to stop)")
    raise typer.Exit(run_watch(settings, lambda: ConsoleUI(quiet=quiet), say))


@app.command("train-dust", short_help="Train the dust model.")
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
    compile: bool = typer.Option(True, "--compile/--no-compile", help="torch.compile."),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Start from this model file (e.g. the shipped default)."
    ),
    zoom_share: float | None = typer.Option(
        None,
        "--zoom-share",
        help="Share of crops whose dust is twice as large, for a model run on a "
        "thumbnail twice as large [0].",
    ),
    half_width: bool = typer.Option(
        False,
        "--half-width",
        help="Half the widths (about half the cost per frame); with --init-from, start from "
        "that model's strongest channels.",
    ),
) -> None:
    """Train the dust model's LRL on physical dust (resumes OUT/last.ckpt if present)."""
    given = dict(locals())  # the parameters are DustOptions' fields, name for name
    from abpn_cli.training.commands import DUST_EXITS, DustOptions, dust_settings, run_train_dust
    from abpn_cli.training.progress import dust_summary

    with _exits(DUST_EXITS):
        score = run_train_dust(dust_settings(DustOptions(**given)), lambda line: typer.echo(line))
    summary = dust_summary(score)
    if summary is not None:
        typer.echo(summary)


@app.command("make-evalset", short_help="Write a held-out eval set.")
def make_evalset(
    photos: list[Path] = typer.Option(
        ...,
        "--photos",
        metavar="PATH",
        help="Clean photo or folder (repeatable; folders walked, sorted).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Eval folder: OUT/{before,after,region}."),
    size: int = typer.Option(1024, "--size", min=64, help="Side of the square pairs."),
    seed: int = typer.Option(0, "--seed", help="Same photos + size + seed: same bytes."),
    count_per_photo: int = typer.Option(1, "--count-per-photo", min=1, help="Pairs per photo."),
) -> None:
    """Write a deterministic held-out eval set of synthetic-defect pairs for `abpn eval`."""
    from abpn_cli.training.eval_command import EVALSET_EXITS, EvalSetSettings, run_make_evalset

    settings = EvalSetSettings(tuple(photos), out, size, seed, count_per_photo)
    with _exits(EVALSET_EXITS):
        report = run_make_evalset(settings)
    note = f"; {report.upscaled} upscaled from smaller photos" if report.upscaled else ""
    Console().print(
        f"wrote {len(report.items)} pairs of {size}x{size} to {out} (seed {seed}){note}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("eval", short_help="Score a model on before/after pairs.")
def eval_command(
    pairs: Path = typer.Option(
        ..., "--pairs", help="Folder with before/, after/ and optional region/."
    ),
    model: Path | None = _MODEL,
    levels: str = _LEVELS,
    device: str = _DEVICE,
    baseline: str = typer.Option(
        "none",
        "--baseline",
        help="Score a baseline instead of the model: none|identity|bilateral|edge-preserving.",
    ),
    report: Path | None = _REPORT,
    warmup: bool = typer.Option(
        False, "--warmup", help="Run once untimed first (TorchScript optimises on first calls)."
    ),
) -> None:
    """PSNR/SSIM (input and output vs target) and locality of the model or a baseline."""
    given = dict(locals())  # the parameters are EvalSettings' fields, name for name
    from abpn_cli.batch.settings import parse_levels
    from abpn_cli.training.eval_command import EVAL_EXITS, EvalSettings, run_eval
    from abpn_cli.training.progress import eval_file_line, eval_table

    err = Console(stderr=True)
    with _exits(EVAL_EXITS):
        settings = EvalSettings(**{**given, "levels": parse_levels(levels)})
        result = run_eval(
            settings, lambda r: err.print(eval_file_line(r), highlight=False, soft_wrap=True)
        )
    Console(width=None if sys.stdout.isatty() else 140).print(eval_table(result))


@app.command(short_help="Learn a retouch from a few exemplar pairs.")
def learn(
    pairs: Path | None = typer.Option(
        None, "--pairs", help="Folder of exemplar pairs: DIR/before/<name>, DIR/after/<name>."
    ),
    before: list[Path] | None = typer.Option(
        None,
        "--before",
        metavar="FILE",
        help="An exemplar's before file (repeatable, paired with --after).",
    ),
    after: list[Path] | None = typer.Option(
        None,
        "--after",
        metavar="FILE",
        help="An exemplar's after file (repeatable, same order as --before).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.pt)."),
    base: Path | None = typer.Option(
        None, "--from", help="Model file or checkpoint to start from (default: shipped)."
    ),
    minutes: float | None = typer.Option(
        None, "--minutes", help="Time budget for the whole command [4, or none with --steps]."
    ),
    steps: int | None = typer.Option(None, "--steps", help="Stop after N optimizer steps."),
    threads: int = typer.Option(learn_default("threads"), "--threads", help="CPU threads."),
    seed: int = typer.Option(
        learn_default("seed"), "--seed", help="Seed for crops and augmentation."
    ),
    lr: float = typer.Option(learn_default("lr"), "--lr", help="Adam lr; lr/10 for the last 30 %."),
    batch: int = typer.Option(learn_default("batch"), "--batch", help="Crops per step."),
    max_side: int = typer.Option(
        learn_default("max_side"), "--max-side", help="Pairs are read downscaled to this long side."
    ),
    holdout: bool = typer.Option(
        learn_default("holdout"),
        "--holdout/--no-holdout",
        help="With >= 3 pairs, keep the last one out to score.",
    ),
) -> None:
    """Learn a retouch from a few exemplar before/after pairs; writes a normal model file."""
    given = dict(locals())  # the parameters are learn_settings' arguments, name for name
    import time

    started_at = time.perf_counter()  # --minutes counts from here, imports included
    from abpn_cli.training.commands import LEARN_EXITS, learn_settings
    from abpn_cli.training.learn import learn as run_learning
    from abpn_cli.training.progress import LearnConsole, learn_summary

    with _exits(LEARN_EXITS):
        settings = learn_settings(**given, started_at=started_at)
        with LearnConsole() as ui:
            report = run_learning(settings, ui.show)
    Console().print(learn_summary(report), highlight=False, soft_wrap=True)


def main() -> None:
    app()
