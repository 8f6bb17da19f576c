"""Walk the inputs and plan one job per photo: pure path logic plus read-only stats.

Rules (docs/PRODUCT.md, safety): OUT never lies inside an input folder (unless explicitly allowed,
and then the walker skips it), no input lies inside OUT, no output path is an input, and no
two inputs map to the same output. All of this is decided before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from abpn_cli.batch.errors import BatchUsageError, NothingToProcessError, UnsafeWriteError
from abpn_cli.batch.fsutil import is_temp_name
from abpn_cli.batch.naming import Source, output_names, sidecar_output, sidecar_owners
from abpn_cli.batch.report import count_reasons
from abpn_cli.batch.settings import BatchSettings
from abpn_cli.imaging import format_for_suffix
from abpn_cli.imaging import output_suffix as imaging_output_suffix
from abpn_cli.imaging.raw import RAW_SUFFIXES, raw_available

QA_DIR = "_qa"
STATE_DIR = ".abpn"
MAX_LISTED = 20  # collisions listed in one error message


@dataclass(frozen=True)
class Job:
    """One photo to retouch: where it comes from and every path it will write."""

    index: int
    source: Path  # absolute path of the input file
    shown: str  # the input as the user wrote it (for messages)
    rel: PurePosixPath  # path under its input root
    output: Path  # absolute final output path
    out_rel: str  # output relative to OUT, POSIX: the resume key
    fmt: str  # writer format: jpeg | png | tiff | webp | heif, or keep (the source's own)
    mask: Path | None = None
    blend: Path | None = None
    qa_only: bool = False  # the output is done; only its QA dumps are to be written
    sidecar: Path | None = None  # the input's XMP sidecar, copied to sidecar_out
    sidecar_out: Path | None = None

    def written_paths(self) -> list[Path]:
        paths = (self.output, self.mask, self.blend, self.sidecar_out)
        return [p for p in paths if p is not None]


@dataclass(frozen=True)
class SkippedInput:
    """A file the walk met and will not process, with the reason (it goes in the report)."""

    source: Path  # absolute
    shown: str
    reason: str


# Photo types a shoot brings that this version does not read: named so the report says what
# they are rather than "unsupported".
KNOWN_UNREAD = {
    ".avif": "AVIF is not supported yet",
    **({} if raw_available() else dict.fromkeys(RAW_SUFFIXES, "camera RAW needs rawpy")),
    ".xmp": "sidecar file (not a photo)",
}
SIDECAR_COPIED = "XMP sidecar (copied next to its photo's output)"


def skip_reason(name: str) -> str:
    """Why a file the walk met is not a job (hidden, a known unread type, or not a photo)."""
    if name.startswith("."):
        return "hidden or system file"
    suffix = Path(name).suffix.lower()
    return KNOWN_UNREAD.get(suffix, f"not a photo type abpn reads ({suffix or 'no extension'})")


@dataclass(frozen=True)
class Plan:
    out: Path  # absolute OUT
    jobs: tuple[Job, ...]
    warnings: tuple[str, ...] = ()
    skipped: tuple[SkippedInput, ...] = ()
    input_ids: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    input_paths: frozenset[str] = field(default_factory=frozenset)

    @property
    def state_dir(self) -> Path:
        return self.out / STATE_DIR

    def is_input(self, path: Path) -> bool:
        """True when `path` is (or is a link to) one of the inputs: never write there."""
        if str(path.resolve()) in self.input_paths:
            return True
        try:
            st = path.stat()
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self.input_ids

    def refuse_input(self, dest: Path) -> None:
        """atomic_write's last check before its rename: never over an input."""
        if self.is_input(dest):
            raise UnsafeWriteError(f"refusing to overwrite the input {dest}")


def output_suffix(input_suffix: str, fmt_option: str) -> str:
    """`keep` keeps the input's extension as written (a RAW's is .tif); a format keeps an
    equivalent one."""
    return imaging_output_suffix(fmt_option, input_suffix)


def writer_format(suffix: str) -> str:
    """The encoder an output name asks for (what `--format X` writes)."""
    fmt = format_for_suffix(suffix)
    if fmt is None:
        raise BatchUsageError(f"no writer for extension {suffix!r}")
    return fmt


def qa_paths(out: Path, rel: PurePosixPath) -> tuple[Path, Path]:
    """OUT/_qa/<rel without extension>.mask.png and .blend.png, mirroring the tree."""
    base = out / QA_DIR / rel.parent / rel.stem
    return base.with_name(base.name + ".mask.png"), base.with_name(base.name + ".blend.png")


def _ids(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def is_within(child: Path, parent: Path) -> bool:
    """`child` equals or lies under `parent`, by resolved path or by inode (bind mounts)."""
    child_r, parent_r = child.resolve(), parent.resolve()
    if child_r == parent_r or parent_r in child_r.parents:
        return True
    target = _ids(parent_r)
    if target is None:
        return False
    return any(_ids(p) == target for p in (child_r, *child_r.parents) if p.exists())


def same_place(a: Path, b: Path) -> bool:
    ida = _ids(a)
    return a.resolve() == b.resolve() or (ida is not None and ida == _ids(b))


def walk_folder(
    root: Path,
    suffixes: Iterable[str],
    recursive: bool = True,
    skip_dir: Callable[[Path], bool] = lambda _p: False,
    warn: Callable[[str], None] = lambda _m: None,
    on_skip: Callable[[PurePosixPath, str], None] = lambda _rel, _why: None,
) -> list[PurePosixPath]:
    """Supported, non-hidden files under `root`, sorted by path parts (deterministic).

    Symlinked folders are not followed (no loops); hidden folders (.abpn, .git) and folders
    for which `skip_dir` is true (OUT) are not entered. Every other file met that is not
    returned is passed to `on_skip` with its reason, so nothing disappears silently.
    """
    wanted = {s.lower() for s in suffixes}
    found: list[PurePosixPath] = []

    def on_error(err: OSError) -> None:
        warn(f"cannot read folder {err.filename}: {err.strerror}")

    for folder, dirs, files in os.walk(root, onerror=on_error):
        here = Path(folder)
        if recursive:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not skip_dir(here / d))
        else:
            dirs[:] = []
        for name in sorted(files):
            path = here / name
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if name.startswith(".") or Path(name).suffix.lower() not in wanted:
                if not is_temp_name(name):  # our own leftovers are cleaned, not reported
                    on_skip(rel, skip_reason(name))
            elif path.is_file():
                found.append(rel)
    return sorted(found, key=lambda p: p.parts)


def _check_locations(settings: BatchSettings, out: Path, way_out: str) -> list[str]:
    """Refuse OUT inside/equal to an input folder (unless allowed) and inputs inside OUT."""
    if out.exists() and not out.is_dir():  # then nothing below can be said of OUT as a folder
        return [f"--out {settings.out} exists and is not a folder"]
    errors: list[str] = []
    for given in settings.inputs:
        if not os.path.lexists(given):
            errors.append(f"input not found: {given}")
            continue
        if given.is_dir():
            if same_place(given, out):
                errors.append(f"--out {settings.out} is the input folder {given} itself")
            elif is_within(out, given):
                if not settings.allow_out_inside_input:
                    errors.append(
                        f"--out {settings.out} is inside the input folder {given}: refusing "
                        f"to write into the input tree ({way_out})"
                    )
            elif is_within(given, out):
                errors.append(f"input folder {given} is inside --out {settings.out}")
        elif given.is_file():
            if is_within(given, out):
                errors.append(f"input {given} is inside --out {settings.out}")
        else:
            errors.append(f"input is neither a file nor a folder: {given}")
    return errors


ALLOW_INSIDE = "pass --allow-out-inside-input to allow it; OUT is then skipped when reading"


def check_locations(settings: BatchSettings, way_out: str = ALLOW_INSIDE) -> None:
    """BatchUsageError (exit 2) for inputs and OUT that overlap (`_check_locations`); `way_out`
    is what the message offers for an OUT inside an input (`watch` has no such option)."""
    errors = _check_locations(settings, settings.out.absolute(), way_out)
    if errors:
        raise BatchUsageError("\n".join(errors))


def _candidates(
    settings: BatchSettings,
    out: Path,
    suffixes: frozenset[str],
    warn: Callable[[str], None],
    skipped: list[SkippedInput],
) -> list[tuple[Path, str, PurePosixPath, Path]]:
    """(absolute source, shown name, rel, root) for every supported input, in argument
    order; every other file met is appended to `skipped`."""
    wanted = {s.lower() for s in suffixes}
    items: list[tuple[Path, str, PurePosixPath, Path]] = []

    def skip_dir(path: Path) -> bool:
        return same_place(path, out)

    for given in settings.inputs:
        if given.is_dir():

            def on_skip(rel: PurePosixPath, why: str, root: Path = given) -> None:
                skipped.append(SkippedInput(root.absolute() / rel, str(root / rel), why))

            for rel in walk_folder(given, wanted, settings.recursive, skip_dir, warn, on_skip):
                if given.absolute() / rel not in settings.exclude:
                    items.append((given.absolute() / rel, str(given / rel), rel, given.absolute()))
        elif given.suffix.lower() in wanted:
            source = given.absolute()
            items.append((source, str(given), PurePosixPath(given.name), source.parent))
        else:
            why = skip_reason(given.name)
            warn(f"skipping {given}: {why} (abpn reads {', '.join(sorted(wanted))})")
            skipped.append(SkippedInput(given.absolute(), str(given), why))
    return items


def _find_collisions(jobs: list[Job]) -> list[str]:
    """Output paths (photos and QA files) claimed by more than one input.

    Compared case-insensitively: on a case-insensitive share X.jpg and x.jpg are one file.
    """
    claims: dict[str, list[tuple[Path, Job]]] = {}
    for job in jobs:
        for path in job.written_paths():
            claims.setdefault(str(path).casefold(), []).append((path, job))
    lines = []
    for owners in claims.values():
        sources = sorted({job.shown for _p, job in owners})
        if len(sources) > 1:
            lines.append(f"  {owners[0][0]} <- {', '.join(sources)}")
    return lines


def _unique(
    candidates: list[tuple[Path, str, PurePosixPath, Path]], note: Callable[[str], None]
) -> list[tuple[Path, str, PurePosixPath, Path]]:
    """Each file once, however often (or through whichever link) it was given."""
    seen: dict[tuple[int, int], tuple[str, PurePosixPath]] = {}
    unique = []
    for item in candidates:
        source, shown, rel, _root = item
        ident = _ids(source)
        if ident is not None and ident in seen:
            first_shown, first_rel = seen[ident]
            if first_rel != rel:
                note(f"{shown} is listed twice; processing it once, as {first_shown}")
            continue
        if ident is not None:
            seen[ident] = (shown, rel)
        unique.append(item)
    return unique


def _build_jobs(
    settings: BatchSettings, out: Path, items: list[tuple[Path, str, PurePosixPath, Path]]
) -> list[Job]:
    """One job per input, named by batch.naming's rules, with its XMP sidecar if it has one."""
    names = output_names([Source(src, rel, root) for src, _s, rel, root in items], settings.format)
    cars = sidecar_owners([src for src, *_rest in items])
    jobs: list[Job] = []
    for i, ((source, shown, rel, _root), out_rel) in enumerate(zip(items, names, strict=True)):
        mask, blend = qa_paths(out, out_rel)
        car = cars.get(i)
        jobs.append(
            Job(
                index=i,
                source=source,
                shown=shown,
                rel=rel,
                output=out / out_rel,
                out_rel=out_rel.as_posix(),
                # keep: the format the source's bytes are (a 16-bit PNG named .jpg stays one)
                fmt="keep" if settings.format == "keep" else writer_format(out_rel.suffix),
                mask=mask if settings.dump_mask else None,
                blend=blend if settings.dump_blend else None,
                sidecar=car,
                sidecar_out=None if car is None else sidecar_output(out / out_rel, source, car),
            )
        )
    return jobs


def make_plan(
    settings: BatchSettings,
    suffixes: Iterable[str],
    warn: Callable[[str], None] = lambda _m: None,
) -> Plan:
    """Walk, map and check everything; raise BatchUsageError (exit 2) or NothingToProcess."""
    out = settings.out.absolute()
    check_locations(settings)
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        warn(msg)

    skipped: list[SkippedInput] = []
    candidates = _candidates(settings, out, frozenset(suffixes), note, skipped)
    jobs = _build_jobs(settings, out, _unique(candidates, note))
    cars = {j.sidecar for j in jobs if j.sidecar is not None}
    skipped = [SkippedInput(s.source, s.shown, SIDECAR_COPIED) if s.source in cars else s
               for s in skipped]  # fmt: skip
    if not jobs:
        detail = ""
        if skipped:
            counts = count_reasons(s.reason for s in skipped)
            detail = " (skipped: " + "; ".join(f"{n} {why}" for why, n in counts.items()) + ")"
        raise NothingToProcessError("no supported photos found in the inputs" + detail)

    collisions = _find_collisions(jobs)
    if collisions:
        more = len(collisions) - MAX_LISTED
        listed = collisions[:MAX_LISTED] + ([f"  ... and {more} more"] if more > 0 else [])
        raise BatchUsageError(
            "these inputs would write the same output (rename them, or use --format keep):\n"
            + "\n".join(listed)
        )

    plan = Plan(
        out=out,
        jobs=tuple(jobs),
        warnings=tuple(warnings),
        skipped=tuple(skipped),
        input_ids=frozenset(i for i in (_ids(j.source) for j in jobs) if i is not None),
        input_paths=frozenset(str(j.source.resolve()) for j in jobs),
    )
    clashes = [
        f"  {p} is the input {j.shown}" for j in jobs for p in j.written_paths() if plan.is_input(p)
    ]
    if clashes:
        raise BatchUsageError("refusing to overwrite inputs:\n" + "\n".join(clashes))
    _check_report_path(settings, plan)
    return plan


def _check_report_path(settings: BatchSettings, plan: Plan) -> None:
    """The report never overwrites an input or an output, nor lands in an input folder."""
    if settings.report is None:
        return
    report = settings.report.absolute()
    if report.is_dir():
        raise BatchUsageError(f"--report {settings.report} is a folder")
    if plan.is_input(report):
        raise BatchUsageError(f"--report {settings.report} is one of the inputs")
    out_real = plan.out.resolve()
    written = set()
    for job in plan.jobs:
        for path in job.written_paths():
            written.add(str(path).casefold())
            written.add(str(out_real / path.relative_to(plan.out)).casefold())
    if str(report).casefold() in written or str(report.resolve()).casefold() in written:
        raise BatchUsageError(f"--report {settings.report} is one of the outputs")
    inside_out = is_within(report, plan.out)
    for given in settings.inputs:
        if given.is_dir() and is_within(report, given) and not inside_out:
            raise BatchUsageError(
                f"--report {settings.report} is inside the input folder {given}: "
                "refusing to write into the input tree"
            )
