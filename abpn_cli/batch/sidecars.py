"""XMP sidecars beside outputs: copied with their photo, brought up to date on every rerun.

A sidecar is an input and is only ever read. Its copy beside the output is written
atomically, and only when absent or different from the input's, so a rerun that skips a
finished photo still brings a sidecar added or edited since (Lightroom and darktable rewrite
`x.xmp` whenever the photo's settings change). A sidecar deleted since keeps its old copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from abpn_cli.batch.errors import UnsafeWriteError
from abpn_cli.batch.fsutil import atomic_write, describe_os_error
from abpn_cli.batch.plan import Job, Plan


def sync_sidecar(job: Job, check_dest: Callable[[Path], None] | None = None) -> bool:
    """Copy the job's sidecar beside its output unless the copy there is already the same
    bytes; True when it wrote. Read once, so what is compared is what is written."""
    if job.sidecar is None or job.sidecar_out is None:
        return False
    data = job.sidecar.read_bytes()
    try:
        if job.sidecar_out.read_bytes() == data:
            return False
    except OSError:
        pass  # absent (or unreadable): write it
    atomic_write(job.sidecar_out, lambda tmp: tmp.write_bytes(data), check_dest)
    return True


def refresh_sidecar(job: Job, plan: Plan) -> str | None:
    """For a photo a rerun skips as done: bring its sidecar's copy up to date. Why it could
    not, or None."""
    try:
        sync_sidecar(job, plan.refuse_input)
    except UnsafeWriteError as exc:
        return f"cannot copy the XMP sidecar: {exc}"
    except OSError as exc:
        return f"cannot copy the XMP sidecar {job.sidecar}: {describe_os_error(exc)}"
    return None
