"""Journal, atomic writes, byte-bounded queue, stop control: small, fast unit tests."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path, PurePosixPath

import pytest

from abpn_cli.batch.control import StopControl
from abpn_cli.batch.fsutil import (
    atomic_write,
    clean_stale_temps,
    describe_os_error,
    is_fatal_write_error,
    is_temp_name,
    temp_path_for,
)
from abpn_cli.batch.journal import (
    Journal,
    JournalRecord,
    decide,
    read_journal,
    stamp_input,
)
from abpn_cli.batch.plan import Job
from abpn_cli.batch.queues import CLOSED, ByteBoundedQueue


def record(output: str, **kw) -> JournalRecord:
    base = dict(
        output=output,
        input="/in/" + output,
        input_size=1,
        input_mtime_ns=1,
        input_probe="p",
        fingerprint="f",
        output_size=1,
        output_sha256="s",
        width=1,
        height=1,
        bit_depth=8,
        run="r",
        finished="t",
    )
    base.update(kw)
    return JournalRecord(**base)


def test_truncated_last_line_is_ignored_and_next_append_starts_a_new_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(record("a.jpg").to_line() + record("b.jpg").to_line()[:40])
    state = read_journal(path)
    assert list(state.records) == ["a.jpg"] and state.bad_lines == 1
    journal = Journal(path)
    journal.append(record("c.jpg"))
    journal.close()
    state = read_journal(path)
    assert sorted(state.records) == ["a.jpg", "c.jpg"]


def test_latest_record_wins(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append(record("a.jpg", fingerprint="old"))
    journal.append(record("a.jpg", fingerprint="new"))
    journal.close()
    assert read_journal(path).records["a.jpg"].fingerprint == "new"


def test_develop_and_damaged_survive_the_journal_and_bad_ones_void_the_record(tmp_path):
    path = tmp_path / "journal.jsonl"
    develop = {"demosaic": "AHD", "wb_multipliers": [2.0, 1.0, 1.5]}
    good = record("a.tif", develop=develop, damaged="Corrupt JPEG data: 12 extraneous bytes")
    bad = record("b.jpg", damaged=["not", "a", "string"])
    path.write_bytes(good.to_line() + bad.to_line() + record("c.jpg").to_line())
    state = read_journal(path)
    assert state.records["a.tif"] == good and state.bad_lines == 1
    assert state.records["c.jpg"].develop is None and state.records["c.jpg"].damaged is None


def _job(tmp_path: Path) -> tuple[Job, Path]:
    src = tmp_path / "in.jpg"
    src.write_bytes(os.urandom(3 << 20))  # > 2 MiB: the probe reads head and tail
    out = tmp_path / "out"
    out.mkdir()
    job = Job(0, src, "in.jpg", PurePosixPath("in.jpg"), out / "in.jpg", "in.jpg", "jpeg")
    return job, out


def test_decide_done_only_when_everything_agrees(tmp_path):
    job, out = _job(tmp_path)
    assert decide(job, None, "f", out).reason == "new"
    job.output.write_bytes(b"12345")
    assert "no record" in decide(job, None, "f", out).reason
    stamp = stamp_input(job.source)
    rec = record(
        "in.jpg",
        input_size=stamp.size,
        input_mtime_ns=stamp.mtime_ns,
        input_probe=stamp.probe,
        output_size=5,
    )
    assert decide(job, rec, "f", out).done
    assert decide(job, rec, "f", out, overwrite=True).reason == "redo (--overwrite)"
    assert decide(job, rec, "other", out).reason == "redo (settings changed)"
    job.output.write_bytes(b"123")  # cut short
    assert not decide(job, rec, "f", out).done
    job.output.write_bytes(b"12345")
    # same size and mtime but a changed tail: the probe notices
    data = bytearray(job.source.read_bytes())
    data[-1] ^= 0xFF
    job.source.write_bytes(bytes(data))
    os.utime(job.source, ns=(stamp.mtime_ns, stamp.mtime_ns))
    assert decide(job, rec, "f", out).reason == "redo (input changed)"


def test_atomic_write_leaves_nothing_on_failure_and_replaces_on_success(tmp_path):
    dest = tmp_path / "sub" / "x.jpg"

    def boom(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(dest, boom)
    assert list(dest.parent.iterdir()) == []
    written = atomic_write(dest, lambda temp: temp.write_bytes(b"full"))
    assert dest.read_bytes() == b"full" and written.size == 4
    assert [p.name for p in dest.parent.iterdir()] == ["x.jpg"]


def test_atomic_write_check_can_refuse_the_destination(tmp_path):
    dest = tmp_path / "x.jpg"
    dest.write_bytes(b"original")

    def refuse(_dest: Path) -> None:
        raise PermissionError("no")

    with pytest.raises(PermissionError):
        atomic_write(dest, lambda temp: temp.write_bytes(b"new"), refuse)
    assert dest.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]


def test_temp_names_are_hidden_recognised_and_cleaned(tmp_path):
    temp = temp_path_for(tmp_path / "IMG 1.final.JPG")
    assert temp.name.startswith(".") and temp.suffix == ".JPG" and is_temp_name(temp.name)
    assert not is_temp_name("IMG_1.jpg") and not is_temp_name(".hidden.jpg")
    (tmp_path / "deep").mkdir()
    stale = [temp, tmp_path / "deep" / temp_path_for(tmp_path / "a.png").name]
    for p in stale:
        p.write_bytes(b"partial")
    (tmp_path / "keep.jpg").write_bytes(b"x")
    assert sorted(clean_stale_temps(tmp_path)) == sorted(stale)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["keep.jpg"]


def test_disk_full_is_recognised_through_a_wrapping_exception():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise ValueError("encoder failed") from inner
    except ValueError as exc:
        assert is_fatal_write_error(exc)
        assert describe_os_error(exc).startswith("disk full")
    assert not is_fatal_write_error(PermissionError(errno.EACCES, "Permission denied"))


def test_queue_is_bounded_by_bytes_but_admits_one_oversized_item():
    q: ByteBoundedQueue[str] = ByteBoundedQueue(max_items=5, max_bytes=100)
    assert q.put("big", 500)  # empty queue: admitted even though over budget
    cancel = threading.Event()
    cancel.set()
    assert not q.put("more", 10, cancel=cancel)  # full by bytes: would block
    assert q.get() == "big"
    assert q.put("a", 60) and not q.put("b", 60, cancel=cancel)
    q.close()
    assert q.get() == "a" and q.get() is CLOSED


def test_queue_put_blocks_until_a_get_makes_room():
    q: ByteBoundedQueue[int] = ByteBoundedQueue(max_items=1, max_bytes=10)
    q.put(1, 1)
    done = threading.Event()

    def producer() -> None:
        q.put(2, 1)
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    time.sleep(0.2)
    assert not done.is_set() and q.peak_bytes == 1
    assert q.get() == 1
    assert done.wait(2) and q.get() == 2


def test_signal_sets_the_stop_flag_and_aborts_only_abortable_work():
    stop = StopControl()
    with stop.signals_installed():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop.stopped and stop.reason == "interrupted"
        with pytest.raises(KeyboardInterrupt), stop.abortable():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
