"""What a batch prints: stable plain lines off a TTY, errors only with --quiet, a bar on a TTY."""

import io
from pathlib import Path

import pytest

from abpn_cli.batch.dustmap import DustMapNote
from abpn_cli.batch.progress import ConsoleUI, dust_map_line
from abpn_cli.batch.report import FileResult, Summary, counted, summary_line


def _results() -> list[tuple[FileResult, str]]:
    ok = FileResult(Path("/in/a.jpg"), Path("/out/a.jpg"), "ok", None, 6000, 4000, 8, 1.25)
    bad = FileResult(Path("/in/b.jpg"), Path("/out/b.jpg"), "failed", "truncated JPEG")
    return [(ok, "in/a.jpg"), (bad, "in/b.jpg")]


def _run(quiet: bool, tty: bool) -> str:
    err = io.StringIO()
    ui = ConsoleUI(quiet=quiet, stdout=io.StringIO(), stderr=err, tty=tty)
    ui.start(2, 0)
    for result, shown in _results():
        ui.started(shown)
        ui.tiles(shown, 3, 96)
        ui.finished(result, shown)
    ui.close()
    return err.getvalue()


@pytest.mark.parametrize(
    ("quiet", "expected"),
    [
        (
            False,
            "[1/2] ok      in/a.jpg -> /out/a.jpg (1.25 s)\n"
            "[2/2] failed: in/b.jpg: truncated JPEG\n",
        ),
        (True, "failed: in/b.jpg: truncated JPEG\n"),
    ],
)
def test_off_a_tty_each_file_is_one_parseable_line(quiet, expected):
    assert _run(quiet, tty=False) == expected


def test_on_a_tty_the_bar_counts_files_and_megapixels_and_leaves_no_stale_tile(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich truncates columns on a narrow terminal
    text = _run(False, tty=True)
    flat = " ".join(text.split())  # rich wraps at the (unknown) terminal width
    assert "2/2" in flat and "24 MP" in flat  # one 6000x4000 frame done
    assert "failed: in/b.jpg: truncated JPEG" in text
    assert "tile 3/96" not in text.splitlines()[-1]


def test_a_file_done_by_a_ray_worker_names_the_worker_on_its_line():
    err = io.StringIO()
    ui = ConsoleUI(stdout=io.StringIO(), stderr=err, tty=False)
    ui.start(1, 0)
    done = FileResult(Path("/in/a.jpg"), Path("/out/a.jpg"), "ok", seconds=1.25, worker="w1@n2:42")
    ui.finished(done, "in/a.jpg")
    assert err.getvalue() == "[1/1] ok      in/a.jpg -> /out/a.jpg (1.25 s on w1@n2:42)\n"


@pytest.mark.parametrize(("profiled", "hint"), [(False, True), (True, False)])
def test_the_dust_map_line_points_to_a_profile_only_when_the_batch_had_none(profiled, hint):
    note = DustMapNote(Path("/out/_qa/dust-map.png"), 12, 3, profiled, (Path("my shoot"),))
    line = dust_map_line(note)
    assert line.startswith("dust map: 3 spots recur across the 12 frames (/out/_qa/dust-map.png)")
    assert ("abpn dust-profile 'my shoot' --learn" in line) is hint


@pytest.mark.parametrize(("n", "text"), [(0, "0 spots"), (1, "1 spot"), (2, "2 spots")])
def test_a_count_takes_its_noun_in_the_right_number(n, text):
    assert counted(n, "spot") == text


@pytest.mark.parametrize(
    ("ok", "failed", "rate"), [(4, 0, ", 2.00 img/s"), (2, 2, ", 1.00 img/s"), (0, 3, "")]
)
def test_the_rate_counts_only_photos_retouched(ok, failed, rate):
    line = summary_line(Summary(ok=ok, failed=failed, skipped=0, seconds=2.0))
    assert line == f"{ok} ok, {failed} failed, 0 skipped (done) in 2.0 s{rate}"
