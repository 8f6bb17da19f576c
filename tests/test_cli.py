"""The CLI surface: the command list, exit codes and outputs not pinned elsewhere, and that
every default shown in --help is the settings dataclass's own (one owner per default)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from typer.testing import CliRunner

from abpn_cli.batch.settings import DEFAULT_SENSITIVITY, FORMAT_CHOICES, BatchSettings
from abpn_cli.cli import COMMAND_ORDER, app
from abpn_cli.engine import ModelCard, inspect_model_file
from abpn_cli.engine.bench import DEFAULT_SIZES, parse_sizes
from abpn_cli.training.checkpoint import Checkpoint, save_checkpoint
from abpn_cli.training.dust_train import DustTrainSettings
from abpn_cli.training.learn_settings import LearnSettings
from abpn_cli.training.train_settings import TrainSettings
from tests.conftest import TINY, make_tiny_model
from tests.factories import write_eval_pairs

COMMANDS = list(COMMAND_ORDER)  # the help must show exactly these, in this order


def _params(command: str) -> dict[str, Any]:
    """The command's parameters by name (typer's click objects)."""
    group: Any = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params if p.name}


def _bracketed(param: Any) -> str:
    """The default a help text names in brackets: `Optimizer steps [1400].` -> `1400`."""
    found = re.search(r"\[([^\]]+)\]", getattr(param, "help", "") or "")
    assert found, f"{param.name}: no [default] in its help"
    return found.group(1)


def test_help_lists_the_commands_in_their_order() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:", 1)[1]
    shown = re.findall(r"^  ([a-z][a-z-]*) ", commands, flags=re.MULTILINE)
    assert shown == COMMANDS


def test_help_lists_each_command_with_a_whole_summary_in_80_columns() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=80)
    commands = result.output.split("Commands:", 1)[1]
    assert "..." not in commands and "…" not in commands


def test_help_keeps_flags_and_paths_whole_in_80_columns() -> None:
    result = CliRunner().invoke(app, ["retouch", "--help"], terminal_width=80)
    assert result.exit_code == 0 and "…" not in result.output
    assert (
        "--allow-out-inside-input" in result.output and "OUT/_qa/<name>.mask.png" in result.output
    )
    assert max(len(line) for line in result.output.splitlines()) <= 80


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage: abpn " + command in result.output


def test_bench_help_names_its_options() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--sizes", "--repeats", "--skip-untouched", "--dense", "--tile", "--fp16"):
        assert option in result.output


def test_bench_refuses_bad_sizes_and_a_missing_model(tiny_model_file: Path, tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(app, ["bench", "--model", str(tiny_model_file), "--sizes", "12by"])
    assert res.exit_code == 2 and "--sizes must look like 512x512,6000x4000" in res.output
    res = runner.invoke(app, ["bench", "--model", str(tmp_path / "none.pt"), "--sizes", "x"])
    assert res.exit_code == 4  # the model is checked first


@pytest.mark.parametrize(
    ("extra", "says"),
    [(("--sizes", "0x0"), "at least 1x1"), (("--sizes", "64x64", "--tile", "0"), "--tile")],
)
def test_bench_refuses_sizes_and_tiles_no_image_can_have(tiny_model_file: Path, extra, says):
    res = CliRunner().invoke(app, ["bench", "--model", str(tiny_model_file), *extra])
    assert res.exit_code == 2 and says in res.output, res.output


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _checkpoint(path: Path) -> Path:
    model = make_tiny_model()
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(
        path,
        Checkpoint(
            step=7,
            config=TINY.to_dict(),
            model=model.state_dict(),
            optimizer=opt.state_dict(),
            settings={},
            metrics={"total": 0.25},
        ),
    )
    return path


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("bad.ckpt", "damaged, or another kind of file"),
        ("missing.ckpt", "checkpoint not found"),
        ("model.pt", "is an exported model file, not a training checkpoint"),
        ("evil.ckpt", "holds Python objects other than tensors"),
    ],
)
def test_export_of_a_bad_checkpoint_is_a_usage_error(
    tmp_path: Path, tiny_model_file: Path, source: str, says: str
) -> None:
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    torch.save({"run": _Evil()}, tmp_path / "evil.ckpt")  # refused unread: nothing runs
    path = tiny_model_file if source == "model.pt" else tmp_path / source
    res = CliRunner().invoke(app, ["export", str(path), "--out", str(tmp_path / "m.pt")])
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.split()) and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("out", ["itself", "a folder"])
def test_export_refuses_an_out_that_is_the_checkpoint_or_a_folder(tmp_path: Path, out: str):
    ckpt = _checkpoint(tmp_path / "last.ckpt")
    before = ckpt.read_bytes()
    dest = ckpt if out == "itself" else tmp_path
    res = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(dest)])
    assert res.exit_code == 2 and "--out" in res.output, res.output
    assert ckpt.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_export_writes_a_model_file_with_its_card(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "last.ckpt")
    out = tmp_path / "m.pt"
    res = CliRunner().invoke(app, ["export", str(ckpt), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert " ".join(res.output.split()).startswith(f"wrote {out} (sha256 ")
    card = ModelCard.from_meta(inspect_model_file(out))
    assert (card.kind, card.steps, card.init_from) == ("export", 7, "last.ckpt")
    assert card.sensitivity == 1.0  # a retouch trained on pairs is run with nothing gated


def test_eval_scores_the_model_and_prints_a_table(tiny_model_file: Path, tmp_path: Path):
    pairs = write_eval_pairs(tmp_path / "set")
    report = tmp_path / "eval.json"
    argv = ["eval", "--pairs", str(pairs), "--model", str(tiny_model_file), "--device", "cpu"]
    res = CliRunner().invoke(app, [*argv, "--report", str(report)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "abpn eval: model" in res.stdout and "mean of 2" in res.stdout
    assert re.search(r"^p0: PSNR [\d.]+ -> [\d.]+ dB \([\d.]+ s\)$", res.stderr, re.MULTILINE)
    assert report.is_file()


def test_train_help_names_trainsettings_defaults() -> None:
    params, s = _params("train"), TrainSettings(out=Path("x"))
    names = ["steps", "crop", "levels", "batch", "lr", "lr_decay_at", "seed", "val_every"]
    for name in [*names, "checkpoint_every", "threads"]:
        assert float(_bracketed(params[name])) == float(getattr(s, name)), name
    assert float(_bracketed(params["adv_weight"])) == s.weights.adv


def test_train_dust_help_names_dusttrainsettings_defaults() -> None:
    params = _params("train-dust")
    s = DustTrainSettings(photos=(Path("a.png"),), holdout=(), out=Path("x"))
    for name in ("steps", "batch", "crop", "lr"):
        assert float(_bracketed(params[name])) == float(getattr(s, name)), name


def test_learn_defaults_are_learnsettings_defaults() -> None:
    params = _params("learn")
    fields = {f.name: f.default for f in dataclasses.fields(LearnSettings)}
    for name in ("threads", "seed", "lr", "batch", "max_side", "holdout"):
        assert params[name].default == fields[name], name
    assert _bracketed(params["minutes"]).startswith(f"{fields['minutes']:g},")


@pytest.mark.parametrize("command", ["retouch", "watch"])
def test_batch_defaults_are_batchsettings_defaults(command: str) -> None:
    params = _params(command)
    fields = {f.name: f.default for f in dataclasses.fields(BatchSettings)}
    fields["fmt"] = fields["format"]
    for name, param in params.items():
        if name in fields and name != "levels" and param.default is not None:  # "auto": None
            assert param.default == fields[name], name
    assert _bracketed(params["sensitivity"]).startswith(f"{DEFAULT_SENSITIVITY:g},")
    # --format's help lists what the settings accept, heic included
    assert params["fmt"].help.split("|") == list(FORMAT_CHOICES)


def test_bench_default_sizes_are_the_engines() -> None:
    assert parse_sizes(_params("bench")["sizes"].default) == DEFAULT_SIZES


def test_learn_budget_rule_is_learnsettings_own() -> None:
    """No --minutes: 4 minutes, unless --steps alone bounds the run."""
    kw = {"out": Path("m.pt"), "pairs": []}
    assert LearnSettings.budgeted(None, None, **kw).minutes == LearnSettings.minutes == 4.0
    assert LearnSettings.budgeted(None, 5, **kw).minutes is None
    assert LearnSettings.budgeted(2.0, 5, **kw).minutes == 2.0
