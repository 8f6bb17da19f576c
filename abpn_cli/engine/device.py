"""Device selection: `auto` prefers CUDA, explicit requests never silently fall back."""

from __future__ import annotations

import re

import torch

from abpn_cli.engine.errors import EngineError

_CUDA_RE = re.compile(r"^cuda(:(\d+))?$")


def resolve_device(spec: str = "auto") -> torch.device:
    """Map `auto|cpu|cuda|cuda:N` to a torch.device, or raise EngineError with the reason."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = _CUDA_RE.match(spec)
    if not match:
        raise EngineError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise EngineError(f"device {spec!r} requested but CUDA is not available on this machine")
    index = int(match.group(2) or 0)
    if index >= torch.cuda.device_count():
        raise EngineError(
            f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device(f"cuda:{index}")
