"""Environment check behind `abpn doctor`: what is installed and whether it works."""

from __future__ import annotations

import importlib
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from abpn_cli.exitcodes import EXIT_ENVIRONMENT, EXIT_OK


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def exit_code(checks: list[Check]) -> int:
    """Exit 4 when a required check failed (the environment cannot run abpn), else 0."""
    return EXIT_ENVIRONMENT if any(c.required and not c.ok for c in checks) else EXIT_OK


def checks_table(checks: list[Check]) -> Table:
    """What `abpn doctor` prints: each check ok, FAIL (required) or -- (optional)."""
    table = Table("check", "status", "detail")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]--[/]")
        table.add_row(c.name, status, c.detail)
    return table


_OPTIONAL = (
    ("pillow_heif", "HEIC/HEIF"),
    ("rawpy", "camera RAW"),
    ("watchdog", "watch by file events"),
    ("ray", "--cluster ray"),
)


def _module_version(name: str) -> Check:
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken binary wheel
        return Check(name, False, f"cannot import: {exc}")
    return Check(name, True, str(getattr(module, "__version__", "installed")))


def run_checks(model_path: Path | None, device: str) -> list[Check]:
    """Every check `abpn doctor` prints; required failures make it exit 4."""
    checks = [Check("python", True, platform.python_version())]
    for name in ("torch", "numpy", "PIL", "tifffile", "cv2", "typer", "rich"):
        checks.append(_module_version(name))
    if not all(c.ok for c in checks):
        return checks
    import torch
    from PIL import features

    checks.append(Check("cpu threads", True, str(torch.get_num_threads())))
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        checks.append(Check("cuda", True, ", ".join(names), required=False))
    else:
        checks.append(Check("cuda", False, "not available (CPU will be used)", required=False))
    try:
        import imagecodecs  # TIFF compressions (LZW, Deflate, JPEG-in-TIFF) go through it

        checks.append(Check("imagecodecs", True, imagecodecs.__version__))
    except ImportError:
        checks.append(Check("imagecodecs", False, "missing: TIFF files cannot be read"))
    for codec in ("jpg", "zlib", "webp", "libtiff"):
        ok = bool(features.check(codec))
        checks.append(Check(f"codec {codec}", ok, "ok" if ok else "missing in Pillow"))
    for name, what in _OPTIONAL:  # the formats and features they bring, not the core
        found = _module_version(name)
        detail = found.detail if found.ok else f"missing: {what} unavailable"
        checks.append(Check(f"{name} ({what})", found.ok, detail, required=False))
    exiftool = shutil.which("exiftool")
    checks.append(
        Check("exiftool", exiftool is not None, exiftool or "not found (tests only)", False)
    )

    from abpn_cli.engine import EngineError, default_model_path, load_model, resolve_device

    try:
        checks.append(Check("device", True, str(resolve_device(device))))
    except EngineError as exc:
        checks.append(Check("device", False, str(exc)))
    path = model_path or default_model_path()
    try:
        model = load_model(path, device if checks[-1].ok else "cpu")
        checks.append(Check("model", True, f"{path} ({describe_model(model)})"))
    except EngineError as exc:
        checks.append(Check("model", False, str(exc)))
    return checks


def describe_model(model) -> str:  # LoadedModel (lazy torch import)
    """sha256, how it was made (kind, steps, samples) and thumbnail, whichever writer made it."""
    from abpn_cli.engine.modelcard import ModelCard

    card = ModelCard.from_meta(model.metadata)
    return f"sha256 {model.sha256[:12]}…, {card.summary}, thumbnail {model.config.thumbnail}"
