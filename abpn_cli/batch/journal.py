"""Resume journal: OUT/.abpn/journal.jsonl, one fsynced JSON line per finished output.

A file counts as done only if its latest record exists, was made with the same settings
fingerprint, its input still has the recorded size, mtime and head/tail probe, and the
output (and QA files) exist with the recorded sizes. Anything else is redone. A line cut
short by a kill is not valid JSON and is ignored; the next append starts on a fresh line.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from abpn_cli.batch.fsutil import atomic_write_bytes, input_probe
from abpn_cli.batch.plan import Job

JOURNAL_NAME = "journal.jsonl"
JOURNAL_VERSION = 1
COMPACT_SLACK = 1000  # rewrite the journal when it has this many superseded lines


@dataclass(frozen=True)
class InputStamp:
    """What identifies an input's content cheaply: size, mtime and a head/tail hash."""

    size: int
    mtime_ns: int
    probe: str


def stamp_input(path: Path) -> InputStamp:
    st = path.stat()
    return InputStamp(st.st_size, st.st_mtime_ns, input_probe(path, st.st_size))


@dataclass(frozen=True)
class JournalRecord:
    output: str  # path relative to OUT (POSIX): the key
    input: str
    input_size: int
    input_mtime_ns: int
    input_probe: str
    fingerprint: str
    output_size: int
    output_sha256: str
    width: int
    height: int
    bit_depth: int
    run: str
    finished: str
    qa: dict[str, int] = field(default_factory=dict)  # QA relpath -> size
    edit: dict[str, Any] | None = None  # EditSummary.to_json(): spots, tiles (newer records)
    # kept, like edit, so that a resumed run's report still says them for files it skips
    develop: dict[str, Any] | None = None  # how a camera RAW was developed (imaging.raw)
    damaged: str | None = None  # decoder damage accepted with --accept-damaged
    v: int = JOURNAL_VERSION

    def to_line(self) -> bytes:
        return (json.dumps(asdict(self), separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_dict(cls, data: Any) -> JournalRecord | None:
        """A record, or None for anything malformed (never trust a half-written line)."""
        if not isinstance(data, dict) or data.get("v") != JOURNAL_VERSION:
            return None
        try:
            record = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (KeyError, TypeError):
            return None
        ints = (record.input_size, record.input_mtime_ns, record.output_size)
        if not all(isinstance(i, int) for i in ints) or not isinstance(record.qa, dict):
            return None
        optional = ((record.edit, dict), (record.develop, dict), (record.damaged, str))
        if any(value is not None and not isinstance(value, kind) for value, kind in optional):
            return None
        return record


@dataclass
class JournalState:
    records: dict[str, JournalRecord]  # latest record per output
    lines: int  # lines in the file, valid or not
    bad_lines: int


def read_journal(path: Path) -> JournalState:
    """Latest valid record per output; unreadable lines are counted and skipped."""
    records: dict[str, JournalRecord] = {}
    lines = bad = 0
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return JournalState(records, 0, 0)
    for line in raw.splitlines():
        if not line.strip():
            continue
        lines += 1
        try:
            record = JournalRecord.from_dict(json.loads(line))
        except (ValueError, UnicodeDecodeError):
            record = None
        if record is None:
            bad += 1
            continue
        records[record.output] = record
    return JournalState(records, lines, bad)


def compact_if_needed(path: Path, state: JournalState) -> bool:
    """Atomically rewrite the journal with only the latest records once it has grown."""
    if state.lines - len(state.records) < COMPACT_SLACK:
        return False
    data = b"".join(r.to_line() for r in state.records.values())
    atomic_write_bytes(path, data)
    return True


class JournalSink(Protocol):
    """Where the write stage puts a finished file's record (the file, or a worker's hand-back)."""

    def append(self, record: JournalRecord) -> None: ...


class Journal:
    """Append-only, fsync-per-line writer; safe to call from the writer thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._needs_newline = _ends_without_newline(path)

    def append(self, record: JournalRecord) -> None:
        data = record.to_line()
        with self._lock:
            if self._fd < 0:
                raise RuntimeError("journal is closed")
            if self._needs_newline:  # a killed run left half a line: never glue onto it
                data = b"\n" + data
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._needs_newline = False
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _ends_without_newline(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return False
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) != b"\n"


@dataclass(frozen=True)
class Decision:
    """Whether a job is already done, and a short word on why (shown by --dry-run)."""

    done: bool
    reason: str
    qa_only: bool = False  # the output is done and stays; only asked-for QA dumps are missing

    @property
    def label(self) -> str:
        return "skip (done)" if self.done else self.reason


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def decide(
    job: Job,
    record: JournalRecord | None,
    fingerprint: str,
    out: Path,
    overwrite: bool = False,
) -> Decision:
    """Done only when record, settings, input and outputs all still agree."""
    if overwrite:
        return Decision(False, "redo (--overwrite)")
    if record is None:
        if os.path.lexists(job.output):
            return Decision(False, "redo (no record: partial or foreign output)")
        return Decision(False, "new")
    if record.fingerprint != fingerprint:
        return Decision(False, "redo (settings changed)")
    try:
        st = job.source.stat()
    except OSError:
        return Decision(False, "redo (input unreadable)")
    if (st.st_size, st.st_mtime_ns) != (record.input_size, record.input_mtime_ns):
        return Decision(False, "redo (input changed)")
    if _file_size(job.output) != record.output_size:
        return Decision(False, "redo (output missing or changed)")
    try:
        if input_probe(job.source, st.st_size) != record.input_probe:
            return Decision(False, "redo (input changed)")
    except OSError:
        return Decision(False, "redo (input unreadable)")
    if _missing_dumps(job, record, out):
        return Decision(False, "dumps only (QA files missing)", qa_only=True)
    return Decision(True, "done")


def _missing_dumps(job: Job, record: JournalRecord, out: Path) -> bool:
    """Whether a QA dump this run asks for is absent or not the one the journal recorded."""
    for path in (job.mask, job.blend):
        if path is None:
            continue
        rel = path.relative_to(out).as_posix()
        if rel not in record.qa or _file_size(path) != record.qa[rel]:
            return True
    return False
