"""Batch settings: one frozen, validated value built from the CLI (or a script)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abpn_cli.batch.errors import BatchUsageError
from abpn_cli.engine import RetouchOptions
from abpn_cli.engine.spots import mask_threshold
from abpn_cli.exitcodes import EXIT_USAGE, ExitRule
from abpn_cli.formats import FORMAT_CHOICES

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
MAX_LEVELS = 8  # the engine accepts 0..8
DEFAULT_QUEUE_BYTES = 1 << 30  # decoded frames held between stages (per queue)
DEFAULT_QUEUE_FRAMES = 2
DEFAULT_TILE = RetouchOptions().tile  # the engine's measured default
# The batch default for a model whose card names none (the dust models): drop the edits the
# model is least sure of. The engine's own default, 1.0, applies everything the model proposes,
# which is what training and eval measure, and what a learned look's card asks for.
DEFAULT_SENSITIVITY = 0.05

# a bad option is one unwrapped line (cron logs get grepped), nothing written
SETTINGS_EXITS = (ExitRule(BatchUsageError, EXIT_USAGE, lambda exc: f"error: {exc}"),)


def batch_settings(options: dict[str, Any], own: Collection[str]) -> BatchSettings:
    """BatchSettings from `retouch`'s or `watch`'s options, which are its fields name for name
    (None: not given, the field's default) but for `fmt` (--format, lower-cased), `levels`
    (parsed) and the command's `own` options; one place, so the two commands agree."""
    fields = {k: v for k, v in options.items() if k not in own}
    fields["inputs"] = tuple(fields["inputs"])
    fields["format"] = fields.pop("fmt").lower()
    if "levels" in fields:
        fields["levels"] = parse_levels(fields["levels"])
    return BatchSettings.given(**fields)


def parse_levels(text: str | int | None) -> int | None:
    """`auto` (or None) -> None, `N` -> N within 0..8; anything else is a usage error."""
    if text is None:
        return None
    if isinstance(text, int):
        value = text
    else:
        word = text.strip().lower()
        if word == "auto":
            return None
        if not word.isdigit():
            raise BatchUsageError(f"--levels must be 'auto' or a number 0..{MAX_LEVELS}: {text!r}")
        value = int(word)
    if not 0 <= value <= MAX_LEVELS:
        raise BatchUsageError(f"--levels must be 'auto' or a number 0..{MAX_LEVELS}: {value}")
    return value


@dataclass(frozen=True)
class BatchSettings:
    """Everything a run needs; validated on construction so a bad value never reaches work."""

    inputs: tuple[Path, ...]
    out: Path
    model: Path | None = None
    device: str = "auto"
    levels: int | None = None
    strength: float = 1.0
    sensitivity: float | None = None  # None: the model's (for_model), else DEFAULT_SENSITIVITY
    dump_mask: bool = False
    dump_blend: bool = False
    format: str = "keep"
    jpeg_quality: int | None = None
    overwrite: bool = False
    report: Path | None = None
    dry_run: bool = False
    quiet: bool = False
    max_megapixels: float = 400.0
    recursive: bool = True
    allow_out_inside_input: bool = False
    # process JPEGs the decoder only partly recovered (marked "damaged" in the report);
    # not fingerprinted: a damaged file that failed has no output to redo
    accept_damaged: bool = False
    tile: int = DEFAULT_TILE
    queue_frames: int = DEFAULT_QUEUE_FRAMES
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    # absolute paths a folder walk passes over without a word: files a hot folder is still
    # receiving (`abpn watch`); they do not change any output, so they are not fingerprinted
    exclude: frozenset[Path] = frozenset()
    # a sensor dust profile (`abpn dust-profile`): its shadows are divided out before the model
    dust_profile: Path | None = None

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise BatchUsageError("; ".join(problems))

    @classmethod
    def given(cls, **options: Any) -> BatchSettings:
        """From command-line options, None meaning not given: the field's default applies."""
        return cls(**{k: v for k, v in options.items() if v is not None})

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)

    def for_model(self, card_sensitivity: float | None) -> BatchSettings:
        """The settings with --sensitivity decided: as given, else what the model's card asks
        for, else DEFAULT_SENSITIVITY (the runner calls this once the model file is known, so a
        learned look is not run through the dust model's gate)."""
        if self.sensitivity is not None:
            return self
        chosen = DEFAULT_SENSITIVITY if card_sensitivity is None else float(card_sensitivity)
        try:
            mask_threshold(chosen)  # the range's one owner, as for --sensitivity
        except ValueError:
            raise BatchUsageError(
                f"the model file asks for sensitivity {chosen}, not in 0..1"
            ) from None
        return dataclasses.replace(self, sensitivity=chosen)

    @property
    def applied_sensitivity(self) -> float:
        """The sensitivity retouching uses (DEFAULT_SENSITIVITY until `for_model` decided)."""
        return DEFAULT_SENSITIVITY if self.sensitivity is None else self.sensitivity

    def retouch_options(self) -> RetouchOptions:
        return RetouchOptions(
            levels=self.levels,
            strength=self.strength,
            sensitivity=self.applied_sensitivity,
            want_mask=self.dump_mask,
            want_blend=self.dump_blend,
            tile=self.tile,
        )

    def output_affecting(self, model_sha256: str, profile_sha256: str = "") -> dict[str, Any]:
        """The settings an output depends on: what resume compares (tile is bit-exact); a
        dust profile by its content, so a re-measured sensor redoes the batch.

        QA dumps are not among them: asking for masks of a finished batch writes only the
        masks (`journal.decide` says which files lack them), and dropping the flag redoes nothing.
        """
        affecting = {
            "model_sha256": model_sha256,
            "levels": "auto" if self.levels is None else self.levels,
            "strength": round(float(self.strength), 6),
            "sensitivity": round(float(self.applied_sensitivity), 6),
            "format": self.format,
            "jpeg_quality": self.jpeg_quality,
        }
        if profile_sha256:  # absent without one: fingerprints of earlier batches still match
            affecting["dust_profile_sha256"] = profile_sha256
        return affecting

    def fingerprint(self, model_sha256: str, profile_sha256: str = "") -> str:
        """Stable hash of `output_affecting`: equal fingerprints mean an identical output."""
        blob = json.dumps(self.output_affecting(model_sha256, profile_sha256), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def report_dict(self) -> dict[str, Any]:
        """Settings as they appear in the JSON report."""
        return {
            "inputs": [str(p.absolute()) for p in self.inputs],
            "out": str(self.out.absolute()),
            "device": self.device,
            "levels": "auto" if self.levels is None else self.levels,
            "strength": self.strength,
            "sensitivity": self.sensitivity,
            "format": self.format,
            "jpeg_quality": self.jpeg_quality,
            "dump_mask": self.dump_mask,
            "dump_blend": self.dump_blend,
            "overwrite": self.overwrite,
            "recursive": self.recursive,
            "max_megapixels": self.max_megapixels,
            "tile": self.tile,
            "allow_out_inside_input": self.allow_out_inside_input,
            "accept_damaged": self.accept_damaged,
            "dust_profile": str(self.dust_profile.absolute()) if self.dust_profile else None,
        }


def validate(s: BatchSettings) -> list[str]:
    """Every problem with the option values, so the user fixes them all in one go."""
    problems = []
    if not s.inputs:
        problems.append("give at least one INPUT file or folder")
    if not DEVICE_RE.match(s.device.strip().lower()):
        problems.append(f"--device must be auto, cpu, cuda or cuda:N, not {s.device!r}")
    if s.levels is not None and not 0 <= s.levels <= MAX_LEVELS:
        problems.append(f"--levels must be 'auto' or 0..{MAX_LEVELS}")
    if not 0.0 <= s.strength <= 1.0:
        problems.append(f"--strength must be within 0..1, not {s.strength}")
    try:
        if s.sensitivity is not None:
            mask_threshold(s.sensitivity)
    except ValueError:
        problems.append(f"--sensitivity must be within 0..1, not {s.sensitivity}")
    if s.format not in FORMAT_CHOICES:
        problems.append(f"--format must be one of {', '.join(FORMAT_CHOICES)}, not {s.format!r}")
    if s.jpeg_quality is not None and not 1 <= s.jpeg_quality <= 100:
        problems.append(f"--jpeg-quality must be within 1..100, not {s.jpeg_quality}")
    if not s.max_megapixels > 0:
        problems.append(f"--max-megapixels must be positive, not {s.max_megapixels}")
    if s.tile < 64 or s.tile % 2:
        problems.append(f"--tile must be an even number >= 64, not {s.tile}")
    if s.dust_profile is not None and not s.dust_profile.is_file():
        problems.append(f"--dust-profile {s.dust_profile} is not a file")
    if s.queue_frames < 1 or s.queue_bytes < 1:
        problems.append("queue bounds must be positive")
    return problems
