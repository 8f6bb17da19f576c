"""Per-file stages (read, retouch, write) and two ways to drive them.

`run_pipelined`: a reader thread decodes ahead, the model runs in the calling (main) thread,
a writer thread encodes and writes; the queues between them are bounded in frames and bytes.
`run_simple`: the same three stage functions in a plain loop (the benchmark's baseline).
Every per-file failure becomes a FileResult; only 'disk full' and signals stop the batch.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from abpn_cli.batch.context import BatchContext
from abpn_cli.batch.control import INTERRUPTED
from abpn_cli.batch.errors import UnsafeWriteError
from abpn_cli.batch.fsutil import (
    WrittenFile,
    atomic_copy,
    atomic_write,
    describe_os_error,
    existing_file,
    is_fatal_write_error,
)
from abpn_cli.batch.journal import InputStamp, JournalRecord, stamp_input
from abpn_cli.batch.plan import Job
from abpn_cli.batch.queues import ByteBoundedQueue, Closed
from abpn_cli.batch.report import EditSummary, FileResult
from abpn_cli.batch.sidecars import sync_sidecar
from abpn_cli.engine import retouch
from abpn_cli.engine.dustprofile import DustProfile, aperture_note, apply_profile, aspect_label
from abpn_cli.imaging import (
    ImageError,
    Photo,
    may_copy_source,
    read_photo,
    save_blend,
    save_mask,
    save_photo,
)
from abpn_cli.imaging.exif import f_number

READER_JOIN_SECONDS = 30.0  # a reader stuck on a dead network share is abandoned (read-only)


@dataclass
class Decoded:
    job: Job
    photo: Photo
    stamp: InputStamp
    seconds: float

    @property
    def nbytes(self) -> int:
        return _nbytes(self.photo.pixels, self.photo.alpha)


@dataclass
class Retouched:
    job: Job
    photo: Photo  # its pixels are the retouched ones: the original frame is released
    image: np.ndarray
    mask: np.ndarray | None
    blend: np.ndarray | None
    stamp: InputStamp
    seconds: float
    edit: EditSummary | None = None

    @property
    def nbytes(self) -> int:
        return _nbytes(self.image, self.photo.alpha, self.mask, self.blend)

    @property
    def develop(self) -> dict[str, Any] | None:
        """A RAW source's develop settings, as the report and the journal keep them."""
        return self.photo.meta.raw.develop if self.photo.meta.raw else None

    @property
    def damaged(self) -> str | None:
        """The damage an accepted damaged JPEG was read with (--accept-damaged)."""
        return "; ".join(self.photo.damage) or None


class _Interrupted:
    """The model's work on a frame was abandoned because of a signal."""


ABANDONED = _Interrupted()


def _nbytes(*arrays: np.ndarray | None) -> int:
    return sum(a.nbytes for a in arrays if a is not None)


def _failed(job: Job, reason: str, seconds: float, photo: Photo | None = None) -> FileResult:
    h, w = (photo.pixels.shape[:2]) if photo is not None else (None, None)
    return FileResult(
        input=job.source,
        output=job.output,
        status="failed",
        error=reason,
        width=w,
        height=h,
        bit_depth=photo.stored_bit_depth if photo is not None else None,
        seconds=seconds,
    )


def read_stage(ctx: BatchContext, job: Job) -> Decoded | FileResult:
    """Stamp (for resume) then decode; any problem with this one file is its result."""
    start = time.perf_counter()
    try:
        stamp = stamp_input(job.source)
        photo = read_photo(job.source, ctx.settings.max_pixels, ctx.settings.accept_damaged)
    except ImageError as exc:
        return _failed(job, str(exc), time.perf_counter() - start)
    except OSError as exc:
        return _failed(job, f"cannot read: {describe_os_error(exc)}", time.perf_counter() - start)
    except MemoryError:
        return _failed(job, "out of memory while decoding", time.perf_counter() - start)
    except Exception as exc:  # a decoder bug on one file must not stop the batch
        reason = f"cannot decode: {type(exc).__name__}: {exc}"
        return _failed(job, reason, time.perf_counter() - start)
    return Decoded(job, photo, stamp, time.perf_counter() - start)


def retouch_stage(ctx: BatchContext, item: Decoded) -> Retouched | FileResult | _Interrupted:
    """Run the model; a signal abandons the frame (nothing is written for it)."""
    start = time.perf_counter()
    job, photo = item.job, item.photo
    ctx.ui.started(job.shown)
    try:
        with ctx.stop.abortable():
            photo, profiled = _divide_profile(ctx.profile, photo)
            result = retouch(
                ctx.model,
                photo.pixels,
                ctx.options,
                lambda done, total: ctx.ui.tiles(job.shown, done, total),
                out=photo.pixels if photo.pixels.flags.writeable else None,  # in place: no copy
            )
    except KeyboardInterrupt:
        return ABANDONED
    except MemoryError:
        reason = "out of memory while retouching (try a smaller --tile)"
        return _failed(job, reason, item.seconds + time.perf_counter() - start, photo)
    except Exception as exc:  # EngineError, ValueError, CUDA OOM...: this file only
        reason = f"retouch failed: {type(exc).__name__}: {exc}"
        return _failed(job, reason, item.seconds + time.perf_counter() - start, photo)
    photo = dataclasses.replace(photo, pixels=result.image)  # lets the original frame go
    return Retouched(
        job=job,
        photo=photo,
        image=result.image,
        mask=result.mask,
        blend=result.blend,
        stamp=item.stamp,
        seconds=item.seconds + time.perf_counter() - start,
        edit=EditSummary(
            spot_count=result.spot_count,
            spots=tuple(s.to_json() for s in result.spots),
            tiles_total=result.tiles_total,
            tiles_skipped=result.tiles_skipped,
            profile=profiled,
        ),
    )


def _divide_profile(
    profile: DustProfile | None, photo: Photo
) -> tuple[Photo, dict[str, Any] | None]:
    """The sensor's known shadows divided out before the model looks (it then sees a frame
    with less dust); a frame of another shape is left to the model, with the reason."""
    if profile is None:
        return photo, None
    height, width = photo.pixels.shape[:2]
    if not profile.matches(width, height):
        shape = aspect_label(profile.width, profile.height)
        why = f"frame {width}x{height} is not the profile's {shape}"
        return photo, {"skipped": why}
    if not photo.pixels.flags.writeable:
        photo = dataclasses.replace(photo, pixels=photo.pixels.copy())
    done: dict[str, Any] = {"spots": apply_profile(photo.pixels, profile)}
    note = aperture_note(profile, f_number(photo.meta.exif))
    return photo, done if note is None else {**done, "note": note}


def _write_reason(exc: BaseException) -> str:
    if isinstance(exc, (ImageError, UnsafeWriteError)):
        return str(exc)
    return describe_os_error(exc)


def write_stage(ctx: BatchContext, item: Retouched) -> FileResult:
    """Encode and write atomically, then journal; 'disk full' also stops the batch."""
    start = time.perf_counter()
    job = item.job
    try:
        main, copied = _write_photo(ctx, item)
        if copied and item.edit is not None:
            item = dataclasses.replace(
                item, edit=dataclasses.replace(item.edit, source_copied=True)
            )
        sync_sidecar(job, ctx.plan.refuse_input)  # a qa_only rerun brings an edited sidecar too
        qa = _write_qa(ctx, item)
        ctx.journal.append(_journal_record(ctx, item, main, qa))
    except Exception as exc:
        reason = _write_reason(exc)
        if is_fatal_write_error(exc):
            ctx.stop.request(reason)
            return _written(item, start, f"{reason} while writing {job.output}; batch stopped")
        return _written(item, start, f"cannot write output: {reason}")
    return _written(item, start)


def _write_photo(ctx: BatchContext, item: Retouched) -> tuple[WrittenFile, bool]:
    """The retouched photo, atomically, and whether it is the source's own bytes; a qa_only
    job's finished output stays as it is (only its dumps are new)."""
    job = item.job
    if job.qa_only:
        return existing_file(job.output), False
    jpeg_quality = ctx.settings.jpeg_quality
    unchanged = item.edit is not None and item.edit.unchanged
    if unchanged and may_copy_source(item.photo, job.fmt, jpeg_quality):
        # the source's own bytes, if it is still the file that was read (else: encode)
        same = lambda: stamp_input(job.source) == item.stamp  # noqa: E731
        copied = atomic_copy(job.source, job.output, same, ctx.plan.refuse_input)
        if copied is not None:
            return copied, True
    written = atomic_write(
        job.output,
        lambda tmp: save_photo(item.photo, item.image, tmp, fmt=job.fmt, jpeg_quality=jpeg_quality),
        ctx.plan.refuse_input,
    )
    return written, False


def _write_qa(ctx: BatchContext, item: Retouched) -> dict[str, int]:
    """The QA dumps asked for (mask, blend), atomically: their sizes by path under OUT, which
    the journal keeps so that a rerun knows which dumps a finished file still lacks."""
    qa: dict[str, int] = {}
    dumps = ((item.job.mask, item.mask, save_mask), (item.job.blend, item.blend, save_blend))
    for dest, layer, save in dumps:
        if dest is not None and layer is not None:
            written = atomic_write(dest, functools.partial(save, layer), ctx.plan.refuse_input)
            qa[dest.relative_to(ctx.plan.out).as_posix()] = written.size
    return qa


def _journal_record(
    ctx: BatchContext, item: Retouched, main: WrittenFile, qa: dict[str, int]
) -> JournalRecord:
    """What a rerun checks this output against before it skips the file as done."""
    h, w = item.image.shape[:2]
    return JournalRecord(
        output=item.job.out_rel,
        input=str(item.job.source),
        input_size=item.stamp.size,
        input_mtime_ns=item.stamp.mtime_ns,
        input_probe=item.stamp.probe,
        fingerprint=ctx.fingerprint,
        output_size=main.size,
        output_sha256=main.sha256,
        width=w,
        height=h,
        bit_depth=item.photo.stored_bit_depth,
        run=ctx.run_id,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        qa=qa,
        edit=None if item.edit is None else item.edit.to_json(),
        develop=item.develop,
        damaged=item.damaged,
    )


def _written(item: Retouched, start: float, error: str | None = None) -> FileResult:
    """The file's result: ok with its edit, or failed with `error`; timed from the read."""
    h, w = item.image.shape[:2]
    return FileResult(
        input=item.job.source,
        output=item.job.output,
        status="ok" if error is None else "failed",
        error=error,
        width=w,
        height=h,
        bit_depth=item.photo.stored_bit_depth,
        seconds=item.seconds + time.perf_counter() - start,
        edit=item.edit if error is None else None,
        qa_only=item.job.qa_only,
        develop=item.develop,
        damaged=item.damaged,
    )


def _reader_loop(ctx: BatchContext, jobs: list[Job], queue: ByteBoundedQueue[Decoded]) -> None:
    try:
        for job in jobs:
            if ctx.stop.stopped:
                break
            item = read_stage(ctx, job)
            if isinstance(item, FileResult):
                ctx.book.record(job, item)
                continue
            queued = queue.put(item, item.nbytes, cancel=ctx.stop.event)
            del item  # do not pin this frame's pixels while decoding the next one
            if not queued:
                break
    except BaseException as exc:  # a bug here must stop the batch, not hang it
        ctx.stop.request(f"internal error in reader: {type(exc).__name__}: {exc}")
    finally:
        queue.close()


def _writer_loop(ctx: BatchContext, queue: ByteBoundedQueue[Retouched]) -> None:
    try:
        while True:
            item = queue.get()
            if isinstance(item, Closed):
                return
            if ctx.stop.stopped:
                continue  # stopping: queued frames are discarded, nothing half-written
            ctx.book.record(item.job, write_stage(ctx, item))
            del item  # do not pin the written frame while waiting for the next
    except BaseException as exc:
        ctx.stop.request(f"internal error in writer: {type(exc).__name__}: {exc}")
        queue.drain()


def run_pipelined(ctx: BatchContext, jobs: list[Job]) -> None:
    """Decode ahead, model in this thread, write behind; returns once all threads are done."""
    settings = ctx.settings
    decoded: ByteBoundedQueue[Decoded] = ByteBoundedQueue(
        settings.queue_frames, settings.queue_bytes
    )
    encoded: ByteBoundedQueue[Retouched] = ByteBoundedQueue(
        settings.queue_frames, settings.queue_bytes
    )
    reader = threading.Thread(
        target=_reader_loop, args=(ctx, jobs, decoded), name="abpn-reader", daemon=True
    )
    writer = threading.Thread(target=_writer_loop, args=(ctx, encoded), name="abpn-writer")
    reader.start()
    writer.start()
    try:
        while True:
            item = decoded.get(cancel=ctx.stop.event)
            if isinstance(item, Closed) or ctx.stop.stopped:
                break
            job = item.job
            out = retouch_stage(ctx, item)
            del item  # the decoded frame is no longer needed: do not hold it while blocked
            if isinstance(out, _Interrupted):
                break
            if isinstance(out, FileResult):
                ctx.book.record(job, out)
                continue
            queued = encoded.put(out, out.nbytes, cancel=ctx.stop.event)
            del out  # the writer owns it now; do not keep it alive through the next frame
            if not queued:
                break
    except BaseException as exc:
        ctx.stop.request(f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        decoded.close()
        decoded.drain()
        encoded.close()
        writer.join()  # the write in progress finishes; queued ones are dropped on a stop
        reader.join(READER_JOIN_SECONDS)
        ctx.book.freeze()


def process_file(ctx: BatchContext, job: Job) -> FileResult | _Interrupted:
    """Read, retouch and write one file: the unit a Ray worker runs too (same bytes out)."""
    item = read_stage(ctx, job)
    if isinstance(item, FileResult):
        return item
    out = retouch_stage(ctx, item)
    del item
    if isinstance(out, _Interrupted) or ctx.stop.stopped:
        return ABANDONED
    if isinstance(out, FileResult):
        return out
    return write_stage(ctx, out)


def run_simple(ctx: BatchContext, jobs: list[Job]) -> None:
    """The same stages one after another: the sequential baseline for benchmarks."""
    try:
        for job in jobs:
            if ctx.stop.stopped:
                break
            result = process_file(ctx, job)
            if isinstance(result, _Interrupted):
                break
            ctx.book.record(job, result)
    finally:
        ctx.book.freeze()


__all__ = [
    "INTERRUPTED",
    "process_file",
    "read_stage",
    "retouch_stage",
    "run_pipelined",
    "run_simple",
    "write_stage",
]
