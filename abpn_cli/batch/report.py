"""Per-file results and the JSON report (schema fixed by docs/PRODUCT.md), written atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from abpn_cli import __version__
from abpn_cli.batch.fsutil import atomic_write_bytes

Status = Literal["ok", "failed", "skipped"]
NOT_DONE = "not processed"  # error prefix of files a stopped run never reached
SKIPPED = "skipped"  # error prefix of files that are not photos abpn reads


@dataclass(frozen=True)
class FileResult:
    """What happened to one input. `error` is None for ok and for skipped-because-done."""

    input: Path
    output: Path | None  # None for files that are not photos abpn reads
    status: Status
    error: str | None = None
    width: int | None = None
    height: int | None = None
    bit_depth: int | None = None
    seconds: float = 0.0
    edit: EditSummary | None = None  # what the model changed (this run, or from the journal)
    done_before: tuple[str, str] | None = None  # (run id, finished) of a file a rerun skipped
    qa_only: bool = False  # only QA dumps were written; the output was already done
    worker: str | None = None  # the Ray worker that did it (`--cluster ray`), else None
    develop: dict[str, Any] | None = None  # how a camera RAW was developed (imaging.raw)
    damaged: str | None = None  # decoder damage accepted with --accept-damaged

    def to_json(self) -> dict[str, Any]:
        data = {
            "input": str(self.input),
            "output": None if self.output is None else str(self.output),
            "status": self.status,
            "error": self.error,
            "width": self.width,
            "height": self.height,
            "bit_depth": self.bit_depth,
            "seconds": round(self.seconds, 4),
        }
        if self.edit is not None:
            data.update(self.edit.to_json())
        if self.done_before is not None:  # a resumed run keeps the earlier result visible
            data["done_in_run"], data["finished"] = self.done_before
        if self.qa_only:
            data["qa_only"] = True
        if self.worker is not None:
            data["worker"] = self.worker
        if self.develop is not None:
            data["develop"] = self.develop
        if self.damaged is not None:
            data["damaged"] = self.damaged
        return data


@dataclass(frozen=True)
class EditSummary:
    """Per file: spots the model edited (centre, diameter in pixels) and tiles left exact."""

    spot_count: int
    spots: tuple[dict[str, float], ...]
    tiles_total: int
    tiles_skipped: int
    source_copied: bool = False  # nothing changed: the output is the source file's own bytes
    # --dust-profile: {"spots": n} shadows divided out, or {"skipped": why}; None: no profile
    profile: dict[str, Any] | None = None

    @property
    def unchanged(self) -> bool:
        """Every level-0 tile was copied and no profile spot changed a pixel, so the output
        pixels are the input's exactly."""
        profiled = bool(self.profile and self.profile.get("spots"))
        return self.tiles_total > 0 and self.tiles_skipped == self.tiles_total and not profiled

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EditSummary | None:
        """Back from a journal record; None if it does not have the expected shape."""
        try:
            tiles = data["tiles"]
            return cls(
                int(data["spots"]),
                tuple(dict(s) for s in data["spot_list"]),
                int(tiles["total"]),
                int(tiles["untouched"]),
                bool(data.get("source_copied", False)),
                profile if isinstance(profile := data.get("profile"), dict) else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "spots": self.spot_count,
            "spot_list": list(self.spots),
            "tiles": {"total": self.tiles_total, "untouched": self.tiles_skipped},
            "source_copied": self.source_copied,
            **({"profile": self.profile} if self.profile is not None else {}),
        }


@dataclass(frozen=True)
class Summary:
    ok: int
    failed: int
    skipped: int
    seconds: float
    interrupted: bool = False
    stopped_reason: str | None = None  # 'interrupted', 'disk full ...', None
    not_processed: int = 0  # of `skipped`: never reached because the run stopped
    not_photos: dict[str, int] = field(default_factory=dict)  # of `skipped`: reason -> count

    @classmethod
    def of(
        cls, results: list[FileResult], seconds: float, stopped_reason: str | None = None
    ) -> Summary:
        count = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "skipped")}
        return cls(
            ok=count["ok"],
            failed=count["failed"],
            skipped=count["skipped"],
            seconds=seconds,
            interrupted=stopped_reason == "interrupted",
            stopped_reason=stopped_reason,
            not_processed=sum(
                r.status == "skipped" and r.error is not None and r.error.startswith(NOT_DONE)
                for r in results
            ),
            not_photos=_reason_counts(results),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }
        if self.not_photos:  # extra keys only when they say something
            data["skipped_reasons"] = dict(self.not_photos)
        if self.stopped_reason:
            data["interrupted"] = self.interrupted
            data["stopped"] = self.stopped_reason
            data["not_processed"] = self.not_processed
        return data


def count_reasons(reasons: Iterable[str]) -> dict[str, int]:
    """How many files were skipped for each reason, most common first."""
    counts: dict[str, int] = {}
    for why in reasons:
        counts[why] = counts.get(why, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _reason_counts(results: list[FileResult]) -> dict[str, int]:
    prefix = f"{SKIPPED}: "
    return count_reasons(
        r.error[len(prefix) :]
        for r in results
        if r.status == "skipped" and r.error is not None and r.error.startswith(prefix)
    )


def build_report(
    *,
    model_path: Path | None,
    model_sha256: str | None,
    settings: dict[str, Any],
    results: list[FileResult],
    summary: Summary,
    error: str | None = None,
) -> dict[str, Any]:
    """The report dict: abpn_version, model, settings, files, summary (+ error if fatal)."""
    report: dict[str, Any] = {
        "abpn_version": __version__,
        "model": {
            "path": str(model_path.absolute()) if model_path is not None else None,
            "sha256": model_sha256,
        },
        "settings": settings,
        "files": [r.to_json() for r in results],
        "summary": summary.to_json(),
    }
    if error is not None:
        report["error"] = error
    return report


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Atomic: a reader (or a cron script) never sees half a report."""
    path = path.absolute()
    data = (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode()
    atomic_write_bytes(path, data)


def counted(n: int, noun: str) -> str:
    """ "1 spot", "3 spots": the count with its noun in the right number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_line(summary: Summary) -> str:
    """The one line printed at the end of a run (its rate counts the photos retouched)."""
    ok, seconds = summary.ok, summary.seconds
    rate = f", {ok / seconds:.2f} img/s" if ok and seconds > 0 else ""
    not_photos = sum(summary.not_photos.values())
    skipped = summary.skipped - summary.not_processed - not_photos
    line = f"{summary.ok} ok, {summary.failed} failed, {skipped} skipped (done)"
    if not_photos:
        line += f", {not_photos} not photos abpn reads"
    if summary.not_processed:
        line += f", {summary.not_processed} not processed"
    line += f" in {summary.seconds:.1f} s{rate}"
    if summary.stopped_reason:
        line += f" — stopped: {summary.stopped_reason}"
        if summary.stopped_reason != "interrupted":
            line += "; fix it and rerun: finished files are kept and skipped"
        else:
            line += "; rerun to resume"
    return line
