"""What the dust benchmark scripts share: the photo folder and the model, or a one-line error."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from abpn_cli.batch.settings import DEFAULT_SENSITIVITY
from abpn_cli.engine import EngineError, LoadedModel, load_model


def dust_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every dust benchmark takes: PHOTOS, --model, --sensitivity (the batch's
    default), described by the script's first docstring line."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("photos", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--sensitivity", type=float, default=DEFAULT_SENSITIVITY)
    return ap


def photos_and_model(folder: Path, model: Path | None) -> tuple[list[Path], LoadedModel] | None:
    """Sorted files of `folder` and the model on the CPU (2 threads); None after an error line."""
    photos = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not photos:
        print(f"error: no photos in {folder}", file=sys.stderr)
        return None
    torch.set_num_threads(2)
    try:
        return photos, load_model(model, "cpu")
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
