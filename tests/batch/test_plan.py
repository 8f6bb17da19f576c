"""Walking and planning: pure path logic, no model, no decoding."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from abpn_cli.batch import BatchSettings, BatchUsageError, NothingToProcessError, make_plan
from abpn_cli.batch.plan import output_suffix, walk_folder
from tests.factories import touch

SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})


def plan(tmp_path: Path, *inputs: Path, **kw):
    settings = BatchSettings(inputs=tuple(inputs), out=kw.pop("out", tmp_path / "out"), **kw)
    return make_plan(settings, SUFFIXES)


def test_walk_is_sorted_case_insensitive_and_skips_hidden_and_other_types(tmp_path):
    touch(
        tmp_path,
        "b.JPG",
        "a.png",
        "notes.txt",
        ".hidden.jpg",
        ".x.jpg.abpn-tmp-1-0123abcd.jpg",
        ".git/c.jpg",
        "sub/z.tif",
        "sub/deeper/y.webp",
    )
    found = walk_folder(tmp_path, SUFFIXES)
    assert found == [PurePosixPath(p) for p in ["a.png", "b.JPG", "sub/deeper/y.webp", "sub/z.tif"]]
    assert walk_folder(tmp_path, SUFFIXES, recursive=False) == [
        PurePosixPath("a.png"),
        PurePosixPath("b.JPG"),
    ]


def test_tree_is_mirrored_so_same_names_in_subfolders_do_not_collide(tmp_path):
    touch(tmp_path / "in", "x.jpg", "a/x.jpg", "b/x.jpg")
    p = plan(tmp_path, tmp_path / "in", dump_mask=True)
    assert [j.out_rel for j in p.jobs] == ["a/x.jpg", "b/x.jpg", "x.jpg"]
    assert p.jobs[0].output == (tmp_path / "out/a/x.jpg").absolute()
    assert p.jobs[0].mask == (tmp_path / "out/_qa/a/x.mask.png").absolute()


def test_single_file_maps_to_out_name(tmp_path):
    touch(tmp_path, "shoot/deep/IMG_1.JPG")
    p = plan(tmp_path, tmp_path / "shoot/deep/IMG_1.JPG")
    assert [j.out_rel for j in p.jobs] == ["IMG_1.JPG"]


def test_two_file_inputs_with_one_name_are_mirrored_under_their_folders(tmp_path):
    touch(tmp_path, "a/x.jpg", "b/x.jpg")
    p = plan(tmp_path, tmp_path / "a/x.jpg", tmp_path / "b/x.jpg")
    assert [j.out_rel for j in p.jobs] == ["a/x.jpg", "b/x.jpg"]


def test_format_change_collision_is_detected(tmp_path):
    touch(tmp_path / "in", "x.png", "x.jpg")
    assert len(plan(tmp_path, tmp_path / "in").jobs) == 2  # keep: distinct names
    with pytest.raises(BatchUsageError, match="same output"):
        plan(tmp_path, tmp_path / "in", format="jpg")


def test_qa_outputs_collide_too(tmp_path):
    touch(tmp_path / "in", "x.png", "x.jpg")
    with pytest.raises(BatchUsageError, match=r"_qa/x\.mask\.png"):
        plan(tmp_path, tmp_path / "in", dump_mask=True)


def test_names_differing_only_in_case_collide(tmp_path):
    touch(tmp_path / "in", "X.jpg", "x.jpg")
    with pytest.raises(BatchUsageError):
        plan(tmp_path, tmp_path / "in")
    touch(tmp_path, "a/X.jpg", "b/x.jpg")  # in two inputs: mirrored apart
    p = plan(tmp_path, tmp_path / "a/X.jpg", tmp_path / "b/x.jpg")
    assert [j.out_rel for j in p.jobs] == ["a/X.jpg", "b/x.jpg"]


def test_same_file_twice_is_planned_once(tmp_path):
    touch(tmp_path / "in", "x.jpg")
    p = plan(tmp_path, tmp_path / "in", tmp_path / "in/x.jpg")
    assert len(p.jobs) == 1


@pytest.mark.parametrize(
    ("fmt", "suffix", "expected"),
    [
        ("keep", ".JPG", ".JPG"),
        ("jpg", ".jpeg", ".jpeg"),
        ("jpg", ".png", ".jpg"),
        ("tif", ".TIFF", ".TIFF"),
        ("png", ".tif", ".png"),
        ("webp", ".jpg", ".webp"),
    ],
)
def test_output_suffix(fmt, suffix, expected):
    assert output_suffix(suffix, fmt) == expected


def test_out_inside_input_is_refused_unless_allowed_and_then_skipped(tmp_path):
    touch(tmp_path / "in", "x.jpg", "done/old.jpg")
    with pytest.raises(BatchUsageError, match="inside the input folder"):
        plan(tmp_path, tmp_path / "in", out=tmp_path / "in/done")
    p = plan(tmp_path, tmp_path / "in", out=tmp_path / "in/done", allow_out_inside_input=True)
    assert [j.out_rel for j in p.jobs] == ["x.jpg"]  # OUT's own files are not inputs


def test_out_equal_to_input_is_refused_even_when_allowed(tmp_path):
    touch(tmp_path / "in", "x.jpg")
    with pytest.raises(BatchUsageError, match="itself"):
        plan(tmp_path, tmp_path / "in", out=tmp_path / "in", allow_out_inside_input=True)


def test_an_out_that_is_a_file_is_refused_as_such_even_when_it_is_the_input(tmp_path):
    touch(tmp_path / "in", "x.jpg")
    with pytest.raises(BatchUsageError) as refused:
        plan(tmp_path, tmp_path / "in/x.jpg", out=tmp_path / "in/x.jpg")
    assert str(refused.value) == f"--out {tmp_path / 'in/x.jpg'} exists and is not a folder"


def test_input_inside_out_is_refused(tmp_path):
    touch(tmp_path / "out", "shoot/x.jpg")
    with pytest.raises(BatchUsageError, match="inside --out"):
        plan(tmp_path, tmp_path / "out/shoot")
    with pytest.raises(BatchUsageError, match="inside --out"):
        plan(tmp_path, tmp_path / "out/shoot/x.jpg", out=tmp_path / "out/shoot")


def test_out_through_a_symlink_into_the_input_is_refused(tmp_path):
    touch(tmp_path / "in", "x.jpg")
    (tmp_path / "link").symlink_to(tmp_path / "in")
    with pytest.raises(BatchUsageError):
        plan(tmp_path, tmp_path / "in", out=tmp_path / "link/out")


def test_missing_input_and_nothing_found(tmp_path):
    with pytest.raises(BatchUsageError, match="not found"):
        plan(tmp_path, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    touch(tmp_path / "empty", "readme.txt")
    with pytest.raises(NothingToProcessError):
        plan(tmp_path, tmp_path / "empty")


def test_report_inside_input_or_on_an_input_is_refused(tmp_path):
    touch(tmp_path / "in", "x.jpg")
    with pytest.raises(BatchUsageError, match="input"):
        plan(tmp_path, tmp_path / "in", report=tmp_path / "in/report.json")
    with pytest.raises(BatchUsageError, match="input"):
        plan(tmp_path, tmp_path / "in", report=tmp_path / "in/x.jpg")
    with pytest.raises(BatchUsageError, match="outputs"):
        plan(tmp_path, tmp_path / "in", report=tmp_path / "out/x.jpg")
    assert plan(tmp_path, tmp_path / "in", report=tmp_path / "out/report.json").jobs


@pytest.mark.parametrize(
    "bad",
    [
        {"strength": 1.5},
        {"strength": -0.1},
        {"format": "gif"},
        {"jpeg_quality": 0},
        {"device": "tpu"},
        {"levels": 9},
        {"tile": 63},
        {"max_megapixels": 0},
    ],
)
def test_bad_option_values_are_usage_errors(tmp_path, bad):
    with pytest.raises(BatchUsageError):
        BatchSettings(inputs=(tmp_path,), out=tmp_path / "out", **bad)
