"""`abpn retouch` end to end, in-process, with a tiny random model and generated photos."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from abpn_cli.batch import BatchSettings, RecordingUI, run_batch
from abpn_cli.imaging import read_photo
from tests.batch.conftest import outputs, temp_files, tree_hashes, write_bad_files
from tests.factories import make_photo
from tests.imaging.test_png import write_png16


def decodes_fully(path) -> bool:
    with Image.open(path) as im:
        im.load()  # raises on truncated data (LOAD_TRUNCATED_IMAGES is off)
    return True


def test_bad_files_fail_one_by_one_with_their_own_reason(tmp_path, cli):
    shoot = tmp_path / "shoot"
    make_photo(shoot / "good.jpg")
    bad = write_bad_files(shoot)
    result, report = cli(shoot, "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 1, result.output
    by_name = {f["input"].rsplit("/", 1)[-1]: f for f in report["files"]}
    assert by_name["good.jpg"]["status"] == "ok"
    assert by_name["good.jpg"]["width"] == 260 and by_name["good.jpg"]["bit_depth"] == 8
    errors = []
    for path in bad.values():
        entry = by_name[path.name]
        assert entry["status"] == "failed" and entry["error"], entry
        errors.append(entry["error"])
    assert len(set(errors)) == len(errors), errors  # each has its own reason
    assert report["summary"]["ok"] == 1 and report["summary"]["failed"] == 4
    assert outputs(tmp_path / "out") == ["good.jpg"]


def test_report_schema(tmp_path, cli, tiny_model_file):
    make_photo(tmp_path / "in/a.png")
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert set(report) == {"abpn_version", "model", "settings", "files", "summary"}
    assert report["model"]["path"] == str(tiny_model_file)
    assert len(report["model"]["sha256"]) == 64
    assert report["settings"]["strength"] == 1.0 and report["settings"]["format"] == "keep"
    (entry,) = report["files"]
    assert set(entry) == {
        "input",
        "output",
        "status",
        "error",
        "width",
        "height",
        "bit_depth",
        "seconds",
        "spots",
        "spot_list",
        "tiles",
        "source_copied",
    }
    assert entry["status"] == "ok" and entry["error"] is None and entry["seconds"] > 0
    assert entry["spots"] == len(entry["spot_list"]) or len(entry["spot_list"]) == 500
    assert entry["tiles"]["untouched"] <= entry["tiles"]["total"]
    assert set(report["summary"]) == {"ok", "failed", "skipped", "seconds"}


def test_same_names_in_subfolders_are_all_written_and_qa_mirrors_the_tree(tmp_path, cli):
    for i, rel in enumerate(["x.jpg", "a/x.jpg", "b/x.jpg"]):
        make_photo(tmp_path / "in" / rel, seed=i)
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--dump-mask", "--dump-blend")
    assert result.exit_code == 0, result.output
    qa = [f"_qa/{d}x.{kind}.png" for d in ("a/", "b/", "") for kind in ("blend", "mask")]
    assert outputs(tmp_path / "out") == sorted(["a/x.jpg", "b/x.jpg", "x.jpg", *qa])
    assert (tmp_path / "out" / "_qa" / "dust-map.png").is_file()  # three frames: a shoot
    hashes = tree_hashes(tmp_path / "out")
    assert len({hashes["a/x.jpg"], hashes["b/x.jpg"], hashes["x.jpg"]}) == 3


def test_out_inside_input_is_refused_and_nothing_is_written(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    before = tree_hashes(tmp_path)
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "in/done", report=tmp_path / "r.json")
    assert result.exit_code == 2
    assert "inside the input folder" in result.output
    assert tree_hashes(tmp_path) == before
    assert not (tmp_path / "in/done").exists() and not (tmp_path / "r.json").exists()


def test_out_inside_input_when_allowed_skips_out_on_rerun(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    args = (tmp_path / "in", "--out", tmp_path / "in/done", "--allow-out-inside-input")
    first, _ = cli(*args)
    assert first.exit_code == 0, first.output
    second, report = cli(*args, report=tmp_path / "r.json")
    assert second.exit_code == 0
    assert [f["input"].rsplit("/", 1)[-1] for f in report["files"]] == ["a.jpg"]
    assert report["files"][0]["status"] == "skipped"


def test_inputs_are_never_modified(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    make_photo(tmp_path / "in/sub/b.tif", seed=1)
    make_photo(tmp_path / "in/c.png", seed=2)
    before = tree_hashes(tmp_path / "in")
    stat_before = {p: p.stat().st_mtime_ns for p in (tmp_path / "in").rglob("*")}
    for extra in ([], ["--overwrite", "--format", "png"], ["--strength", "0.5"]):
        result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", *extra)
        assert result.exit_code == 0, result.output
    assert tree_hashes(tmp_path / "in") == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "in").rglob("*")} == stat_before


def test_rerun_skips_settings_change_redoes_overwrite_redoes(tmp_path, cli):
    for i in range(3):
        make_photo(tmp_path / f"in/p{i}.jpg", seed=i)
    out, rep = tmp_path / "out", tmp_path / "r.json"
    statuses = []
    for extra in ([], [], ["--strength", "0.5"], ["--strength", "0.5"], ["--overwrite"]):
        result, report = cli(tmp_path / "in", "--out", out, *extra, report=rep)
        assert result.exit_code == 0, result.output
        statuses.append({f["status"] for f in report["files"]})
    assert statuses == [{"ok"}, {"skipped"}, {"ok"}, {"skipped"}, {"ok"}]
    # the skip is reported with the size of the photo it skipped
    result, report = cli(tmp_path / "in", "--out", out, "--strength", "0.5", report=rep)
    assert report["files"][0]["width"] == 260


def test_deleted_or_partial_output_is_redone(tmp_path, cli):
    for i in range(2):
        make_photo(tmp_path / f"in/p{i}.jpg", seed=i)
    out, rep = tmp_path / "out", tmp_path / "r.json"
    cli(tmp_path / "in", "--out", out)
    (out / "p0.jpg").unlink()
    data = (out / "p1.jpg").read_bytes()
    (out / "p1.jpg").write_bytes(data[:100])  # someone cut it short
    result, report = cli(tmp_path / "in", "--out", out, report=rep)
    assert result.exit_code == 0
    assert [f["status"] for f in report["files"]] == ["ok", "ok"]
    assert all(decodes_fully(out / n) for n in ("p0.jpg", "p1.jpg"))


def test_empty_folder_exits_3(tmp_path, cli):
    (tmp_path / "in").mkdir()
    (tmp_path / "in/readme.txt").write_text("no photos")
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 3
    assert report["files"] == [] and report["summary"]["ok"] == 0


def test_dry_run_writes_nothing_and_lists_status(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    make_photo(tmp_path / "in/b.jpg", seed=1)
    result, _ = cli(
        tmp_path / "in", "--out", tmp_path / "out", "--dry-run", report=tmp_path / "r.json"
    )
    assert result.exit_code == 0, result.output
    assert "new" in result.stdout and "a.jpg" in result.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.json").exists()
    cli(tmp_path / "in/a.jpg", "--out", tmp_path / "out")
    before = tree_hashes(tmp_path)
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--dry-run")
    assert "skip (done)" in result.stdout and "b.jpg" in result.stdout
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--dry-run", "--strength", ".3")
    assert "redo (settings changed)" in result.stdout
    assert tree_hashes(tmp_path) == before


def test_missing_model_exits_4_with_a_report(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    from typer.testing import CliRunner

    from abpn_cli.cli import app

    argv = ["retouch", str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    argv += ["--model", str(tmp_path / "missing.pt"), "--report", str(tmp_path / "r.json")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 4
    assert "missing.pt" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert (
        report["files"][0]["status"] == "skipped" and "not processed" in report["files"][0]["error"]
    )


@pytest.mark.parametrize(
    "args",
    [["--strength", "2"], ["--levels", "many"], ["--format", "gif"], ["--jpeg-quality", "0"]],
)
def test_bad_option_values_exit_2(tmp_path, cli, args):
    make_photo(tmp_path / "in/a.jpg")
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", *args)
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_collision_is_a_usage_error(tmp_path, cli):
    make_photo(tmp_path / "in/x.jpg")
    make_photo(tmp_path / "in/x.png", seed=1)
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--format", "jpg")
    assert result.exit_code == 2 and "same output" in result.output
    assert not (tmp_path / "out").exists()


def test_two_cards_with_the_same_names_are_mirrored_and_resume(tmp_path, cli):
    for card, seed in (("card1", 0), ("card2", 1)):
        make_photo(tmp_path / card / "DSC_0001.jpg", seed=seed)
    args = (tmp_path / "card1", tmp_path / "card2", "--out", tmp_path / "done")
    result, _ = cli(*args)
    assert result.exit_code == 0, result.output
    assert outputs(tmp_path / "done") == ["card1/DSC_0001.jpg", "card2/DSC_0001.jpg"]
    again, report = cli(*args, report=tmp_path / "r.json")
    assert again.exit_code == 0
    assert [f["status"] for f in report["files"]] == ["skipped", "skipped"]  # done before
    assert all(f["done_in_run"] for f in report["files"])


@pytest.mark.parametrize(
    ("name", "suffix", "pil_format"),
    [("jpg", ".jpg", "JPEG"), ("jpeg", ".jpg", "JPEG"), ("tiff", ".tif", "TIFF")],
)
def test_format_conversion_and_quiet(tmp_path, cli, name, suffix, pil_format):
    make_photo(tmp_path / "in/a.png")
    make_photo(tmp_path / "in/b.webp", seed=1)
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--format", name, "--quiet")
    assert result.exit_code == 0
    assert result.output == ""
    assert outputs(tmp_path / "out") == [f"a{suffix}", f"b{suffix}"]
    with Image.open(tmp_path / f"out/a{suffix}") as im:
        assert im.format == pil_format


def test_disk_full_stops_the_batch_cleanly(tmp_path, tiny_model_file, monkeypatch):
    for i in range(5):
        make_photo(tmp_path / f"in/p{i}.jpg", seed=i)
    import abpn_cli.batch.pipeline as pipeline

    real_save = pipeline.save_photo
    calls = []

    def save_until_full(photo, pixels, dest, **kw):
        calls.append(dest)
        if len(calls) >= 3:
            dest.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(photo, pixels, dest, **kw)

    monkeypatch.setattr(pipeline, "save_photo", save_until_full)
    settings = BatchSettings(
        inputs=(tmp_path / "in",),
        out=tmp_path / "out",
        model=tiny_model_file,
        device="cpu",
        report=tmp_path / "r.json",
    )
    outcome = run_batch(settings, RecordingUI())
    assert outcome.exit_code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    statuses = [f["status"] for f in report["files"]]
    assert statuses[:3] == ["ok", "ok", "failed"]
    assert "disk full" in report["files"][2]["error"]
    assert all(s == "skipped" for s in statuses[3:])
    assert all("disk full" in f["error"] for f in report["files"][3:])
    assert report["summary"]["stopped"].startswith("disk full")
    assert len(calls) == 3  # nothing was attempted after the disk filled up
    assert temp_files(tmp_path) == []
    assert outputs(tmp_path / "out") == ["p0.jpg", "p1.jpg"]


def test_simple_and_pipelined_give_identical_outputs(tmp_path, tiny_model_file):
    for i in range(4):
        make_photo(tmp_path / f"in/p{i}.png", seed=i)
    results = {}
    for m in ("pipelined", "simple"):
        settings = BatchSettings(
            inputs=(tmp_path / "in",),
            out=tmp_path / m,
            model=tiny_model_file,
            device="cpu",
            queue_frames=1,
        )
        outcome = run_batch(settings, RecordingUI(), mode=m)
        assert outcome.exit_code == 0
        results[m] = tree_hashes(tmp_path / m / "")
    strip = {k: v for k, v in results["pipelined"].items() if not k.startswith(".abpn")}
    assert strip == {k: v for k, v in results["simple"].items() if not k.startswith(".abpn")}


def test_16bit_png_comes_out_16bit(tmp_path, cli):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 65535, (120, 160), dtype=np.uint16)
    (tmp_path / "in").mkdir()
    Image.fromarray(arr).save(tmp_path / "in/g16.png")  # 16-bit gray: handled or clear error
    make_photo(tmp_path / "in/rgb.png")
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    entry = report["files"][0]
    assert entry["status"] == "ok" or entry["error"]
    assert result.exit_code in (0, 1)


@pytest.mark.parametrize(("frames", "nbytes"), [(1, 1 << 30), (8, 1)])
def test_read_ahead_is_bounded_by_frames_and_by_bytes(
    tmp_path, tiny_model_file, monkeypatch, frames, nbytes
):
    import time

    import abpn_cli.batch.pipeline as pipeline

    for i in range(8):
        make_photo(tmp_path / f"in/p{i}.png", seed=i)
    reads: list[str] = []
    reads_during_first_retouch: list[int] = []
    real_read, real_retouch = pipeline.read_photo, pipeline.retouch

    def counting_read(path, max_pixels, accept_damaged=False):
        reads.append(path.name)
        return real_read(path, max_pixels, accept_damaged)

    def slow_first(model, pixels, options, on_tile=None, out=None):
        if not reads_during_first_retouch:
            time.sleep(0.5)  # the reader runs ahead as far as the queue lets it
            reads_during_first_retouch.append(len(reads))
        return real_retouch(model, pixels, options, on_tile, out)

    monkeypatch.setattr(pipeline, "read_photo", counting_read)
    monkeypatch.setattr(pipeline, "retouch", slow_first)
    settings = BatchSettings(
        inputs=(tmp_path / "in",),
        out=tmp_path / "out",
        model=tiny_model_file,
        device="cpu",
        queue_frames=frames,
        queue_bytes=nbytes,
    )
    assert run_batch(settings, RecordingUI()).exit_code == 0
    # one in the model, one queued, one decoded by the reader waiting for room
    assert reads_during_first_retouch == [3]
    assert len(reads) == 8


def test_every_file_met_is_in_the_report_with_a_reason(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    for name in ("b.avif", "sub/c.PSD", "notes.txt", ".DS_Store", "z.xmp"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"not read")
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    reasons = {
        Path(f["input"]).name: f["error"] for f in report["files"] if f["status"] == "skipped"
    }
    assert reasons == {
        "b.avif": "skipped: AVIF is not supported yet",
        "c.PSD": "skipped: not a photo type abpn reads (.psd)",
        "notes.txt": "skipped: not a photo type abpn reads (.txt)",
        ".DS_Store": "skipped: hidden or system file",
        "z.xmp": "skipped: sidecar file (not a photo)",
    }
    summary = report["summary"]
    assert summary["ok"] + summary["failed"] + summary["skipped"] == 6  # every file on disk
    assert sum(summary["skipped_reasons"].values()) == 5
    assert "5 not photos abpn reads" in result.output


def test_only_unreadable_files_is_nothing_to_process_with_the_reasons(tmp_path, cli):
    (tmp_path / "in").mkdir()
    (tmp_path / "in/x.avif").write_bytes(b"x")
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out")
    assert result.exit_code == 3
    assert "1 AVIF is not supported yet" in result.output


def test_a_heic_in_a_shoot_comes_out_heic_at_its_bit_depth(tmp_path, cli):
    import shutil

    from abpn_cli.imaging import read_photo

    heif = Path(__file__).parent.parent / "data" / "heif" / "RGB_10__29x100.heif"
    (tmp_path / "in").mkdir()
    shutil.copy(heif, tmp_path / "in" / "IMG_0001.HEIC")
    make_photo(tmp_path / "in" / "b.jpg")
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert report["summary"]["ok"] == 2
    out = read_photo(tmp_path / "out" / "IMG_0001.HEIC")
    assert out.fmt == "heif" and out.meta.heif.bit_depth == 10


def test_qa_dumps_are_extras_that_never_redo_a_finished_output(tmp_path, cli):
    make_photo(tmp_path / "in/a.jpg")
    out = tmp_path / "out"
    first, _ = cli(tmp_path / "in", "--out", out)
    assert first.exit_code == 0, first.output
    kept = (out / "a.jpg").stat()
    second, report = cli(tmp_path / "in", "--out", out, "--dump-mask", report=tmp_path / "r.json")
    assert second.exit_code == 0, second.output
    (entry,) = report["files"]
    assert entry["status"] == "ok" and entry["qa_only"] is True
    now = (out / "a.jpg").stat()
    assert (now.st_ino, now.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)  # not rewritten
    fresh, _ = cli(tmp_path / "in", "--out", tmp_path / "fresh", "--dump-mask")
    assert fresh.exit_code == 0
    mask = "_qa/a.mask.png"
    assert tree_hashes(out)[mask] == tree_hashes(tmp_path / "fresh")[mask]
    for flags in (("--dump-mask",), ()):  # done with its mask; dropping the flag redoes nothing
        again, report = cli(tmp_path / "in", "--out", out, *flags, report=tmp_path / "r.json")
        assert again.exit_code == 0 and report["files"][0]["status"] == "skipped"


@pytest.mark.parametrize(
    ("extra", "magic", "depth"),
    [((), b"\x89PNG", 16), (("--format", "jpg"), b"\xff\xd8", 8)],
)
def test_a_png_named_jpg_keeps_its_own_format_unless_one_is_asked(
    tmp_path, cli, extra, magic, depth
):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 65536, (7, 9, 3)).astype(np.float32)
    rgb = cv2.resize(small, (256, 192), interpolation=cv2.INTER_CUBIC).clip(0, 65535)
    (tmp_path / "in").mkdir()
    src = write_png16(tmp_path / "in" / "named.png", rgb.astype(np.uint16))
    src = src.rename(src.with_name("named.jpg"))  # a PNG, as its bytes say, under a .jpg name
    result, report = cli(src.parent, "--out", tmp_path / "out", *extra, report=tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "named.jpg"
    assert out.read_bytes().startswith(magic)
    assert read_photo(out).bit_depth == depth and report["files"][0]["bit_depth"] == 16


def test_ray_workers_without_a_cluster_is_a_usage_error(tmp_path, cli):
    make_photo(tmp_path / "in" / "a.jpg")
    result, _ = cli(tmp_path / "in", "--out", tmp_path / "out", "--ray-workers", "0")
    assert result.exit_code == 2 and "--ray-workers needs --cluster ray" in result.output
    assert not (tmp_path / "out").exists()


def test_the_report_gives_a_10_bit_heic_its_own_depth(tmp_path, cli):
    heif = Path(__file__).parent.parent / "data" / "heif" / "RGB_10__29x100.heif"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ten.heic").write_bytes(heif.read_bytes())
    result, report = cli(tmp_path / "in", "--out", tmp_path / "out", report=tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert report["files"][0]["bit_depth"] == 10  # its pixels were 16-bit while retouched
