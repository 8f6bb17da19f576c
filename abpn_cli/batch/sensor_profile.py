"""`abpn dust-profile`: measure a sensor's dust from reference frames and write the profile.

The frames are read with the one decoder (`imaging.read_photo`, as stored, never rotated:
sensor coordinates); the measuring is `engine.dustprofile`; the file is written atomically.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from abpn_cli.batch.fsutil import atomic_write_bytes, describe_os_error
from abpn_cli.batch.plan import walk_folder
from abpn_cli.engine.dustprofile import (
    MAX_FRAMES,
    DustProfile,
    DustProfileError,
    build_profile,
    profile_bytes,
)
from abpn_cli.exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, ExitRule
from abpn_cli.imaging import SUPPORTED_SUFFIXES, ImageError, read_photo
from abpn_cli.imaging.exif import f_number
from abpn_cli.imaging.jpeg import ACCEPT_HINT

PROFILE_EXITS = (
    ExitRule(KeyboardInterrupt, EXIT_INTERRUPTED, lambda _: "interrupted; no profile written"),
    ExitRule(DustProfileError, EXIT_USAGE),
    ExitRule(OSError, EXIT_FAILED, lambda exc: f"error: {describe_os_error(exc)}"),
)


@dataclass(frozen=True)
class ProfileSettings:
    frames: tuple[Path, ...]  # files and/or folders of reference frames
    out: Path


PROFILE_SUFFIX = ".npz"


def profile_frames(out: Path, given: Sequence[Path]) -> list[Path]:
    """The frames to read (`reference_files`), once --out is known to be a path a profile may
    be written to: a .npz file path, not a folder, and none of the frames (a photo is known by
    its bytes, so one may be named x.npz). Checked before any pixel is decoded."""
    if out.suffix.lower() != PROFILE_SUFFIX:
        raise DustProfileError(f"--out {out} must end in {PROFILE_SUFFIX} (a dust profile file)")
    if out.is_dir():
        raise DustProfileError(f"--out {out} is a folder; give the profile file's path")
    files = reference_files(given)
    if out.exists() and any(out.samefile(f) for f in files):
        raise DustProfileError(f"--out {out} is one of the frames read; it would be overwritten")
    return files


def reference_files(given: Sequence[Path]) -> list[Path]:
    """The given files, and the supported files of the given folders, evenly thinned to
    MAX_FRAMES (more add little to a median and cost memory)."""
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            files += [path / rel for rel in walk_folder(path, SUPPORTED_SUFFIXES)]
        elif path.is_file():
            files.append(path)
        else:
            raise DustProfileError(f"{path} does not exist")
    if not files:
        raise DustProfileError("no reference frames found")
    unique: dict[Path, Path] = {}  # each file once, however often it was named
    for f in files:
        unique.setdefault(f.resolve(), f)
    files = list(unique.values())
    if len(files) > MAX_FRAMES:
        picks = np.linspace(0, len(files) - 1, MAX_FRAMES).round().astype(int)
        files = [files[i] for i in picks]
    return files


def _pixels(files: Sequence[Path], apertures: list[float]) -> Iterator[np.ndarray]:
    """Each frame's pixels, one at a time; their EXIF apertures go into `apertures`."""
    for path in files:
        try:
            photo = read_photo(path)
        except ImageError as exc:
            why = str(exc).removesuffix(ACCEPT_HINT)  # retouch's option, not this command's
            raise DustProfileError(f"cannot use {path} as a reference: {why}") from exc
        if (f := f_number(photo.meta.exif)) is not None:
            apertures.append(f)
        yield photo.pixels


def run_dust_profile(settings: ProfileSettings) -> DustProfile:
    """Measure, write OUT atomically, return the profile (for the summary)."""
    apertures: list[float] = []
    profile = build_profile(_pixels(profile_frames(settings.out, settings.frames), apertures))
    if apertures:
        profile = replace(profile, f_number=float(np.median(apertures)))
    atomic_write_bytes(settings.out, profile_bytes(profile))
    return profile
