"""Inference engine: model files, devices, level choice, padding and tiled expansion."""

from abpn_cli.engine.device import resolve_device
from abpn_cli.engine.errors import EngineError
from abpn_cli.engine.geometry import choose_levels, padded_size
from abpn_cli.engine.modelcard import ModelCard
from abpn_cli.engine.modelfile import (
    LoadedModel,
    default_model_path,
    inspect_model_file,
    load_eager,
    load_model,
    save_model_file,
)
from abpn_cli.engine.retouch import RetouchOptions, RetouchResult, retouch

__all__ = [
    "EngineError",
    "LoadedModel",
    "ModelCard",
    "RetouchOptions",
    "RetouchResult",
    "choose_levels",
    "default_model_path",
    "inspect_model_file",
    "load_eager",
    "load_model",
    "padded_size",
    "resolve_device",
    "retouch",
    "save_model_file",
]
