"""Output names for a batch: the tree mirrored under OUT, with the two collisions a real shoot
brings resolved by rule instead of refused (docs/PRODUCT.md, "The tree is mirrored").

1. RAW+JPEG in one folder: `x.dng` and `x.jpg` go to `x.tif` and `x.jpg`. Only when a RAW's
   output would be the same file as another input's (`x.dng` next to `x.tif`, or both with
   `--format jpg`) does the RAW's keep its extension in the name: `x.dng.tif`, `x.dng.jpg`.
2. Two cards with the same file names (`card1/DSC_0001.jpg`, `card2/DSC_0001.jpg`): when
   inputs given separately would write the same output, every input is mirrored under its
   own folder name (`OUT/card1/...`, `OUT/card2/...`; a file given by itself counts as its
   folder). Folder names that are themselves equal (`a/card`, `b/card`) take as many parent
   folders as make them all different (`OUT/a/card/...`, `OUT/b/card/...`).

Both rules depend only on the inputs, so a rerun of the same command maps every file to the
same output and resumes. Collisions left after them (`x.png` and `x.jpg` with `--format jpg`)
are refused by the plan before any work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from abpn_cli.imaging import output_suffix
from abpn_cli.imaging.raw import RAW_SUFFIXES

SIDECAR_SUFFIXES = (".xmp", ".XMP")


@dataclass(frozen=True)
class Source:
    """One input file: its path under its input root and the root (the folder given, or
    the folder of a file given by itself)."""

    path: Path  # absolute
    rel: PurePosixPath
    root: Path  # absolute, normalised


def _key(name: PurePosixPath) -> str:
    return name.as_posix().casefold()  # one file on a case-insensitive share


def _clashing(names: Sequence[PurePosixPath], roots: Sequence[Path]) -> list[set[int]]:
    """Groups of indices (size > 1) whose outputs would be the same file."""
    groups: dict[tuple[str, Path], set[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault((_key(name), roots[i]), set()).add(i)
    return [g for g in groups.values() if len(g) > 1]


def _keep_raw_extension(sources: Sequence[Source], names: list[PurePosixPath]) -> None:
    """Rule 1, within each input root: a clashing RAW's output becomes `x.dng.tif`."""
    roots = [s.root for s in sources]
    for group in _clashing(names, roots):
        for i in group:
            rel = sources[i].rel
            if rel.suffix.lower() in RAW_SUFFIXES:
                names[i] = rel.parent / (rel.name + names[i].suffix)


def root_labels(roots: Sequence[Path]) -> dict[Path, PurePosixPath]:
    """Each root's last k folder names, with the smallest k that tells them all apart."""
    parts = {r: Path(os.path.normpath(r)).parts[1:] or ("root",) for r in roots}
    longest = max(len(p) for p in parts.values())
    for k in range(1, longest + 1):
        labels = {r: PurePosixPath(*p[-k:]) for r, p in parts.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {r: PurePosixPath(*p) for r, p in parts.items()}


def output_names(sources: Sequence[Source], fmt: str) -> list[PurePosixPath]:
    """Output path under OUT for every source, in order (rules in the module docstring)."""
    names = [s.rel.with_suffix(output_suffix(fmt, s.rel.suffix)) for s in sources]
    _keep_raw_extension(sources, names)
    across: dict[str, set[Path]] = {}
    for name, src in zip(names, sources, strict=True):
        across.setdefault(_key(name), set()).add(src.root)
    if any(len(roots) > 1 for roots in across.values()):
        labels = root_labels(sorted({s.root for s in sources}))
        names = [labels[s.root] / n for s, n in zip(sources, names, strict=True)]
    return names


def sidecar_of(source: Path) -> Path | None:
    """The XMP sidecar next to a photo: `x.xmp` (Lightroom, Capture One) or `x.dng.xmp`
    (darktable), if one exists."""
    for suffix in SIDECAR_SUFFIXES:
        for candidate in (source.with_suffix(suffix), source.with_name(source.name + suffix)):
            if candidate.is_file():
                return candidate
    return None


def sidecar_owners(sources: Sequence[Path]) -> dict[int, Path]:
    """Which photo each sidecar goes with (index -> sidecar). A sidecar claimed by several
    photos (`x.xmp` beside `x.dng` and `x.jpg`) belongs to the RAW, the file the raw
    converter wrote it for; claimed by several non-RAW photos it belongs to none."""
    claims: dict[Path, list[int]] = {}
    for i, src in enumerate(sources):
        car = sidecar_of(src)
        if car is not None:
            claims.setdefault(car, []).append(i)
    owners: dict[int, Path] = {}
    for car, idx in claims.items():
        raws = [i for i in idx if sources[i].suffix.lower() in RAW_SUFFIXES]
        chosen = idx if len(idx) == 1 else raws
        if len(chosen) == 1:
            owners[chosen[0]] = car
    return owners


def sidecar_output(output: Path, source: Path, sidecar: Path) -> Path:
    """Where a photo's sidecar is copied: named after the output the way it was named after
    the input (`x.tif` -> `x.xmp`, darktable's `x.dng.xmp` -> `x.tif.xmp`)."""
    if sidecar.name.lower() == (source.name + ".xmp").lower():
        return output.with_name(output.name + sidecar.suffix)
    return output.with_suffix(sidecar.suffix)
