"""Model files: a TorchScript archive of ABPN plus `abpn.json` (config and metadata).

Loading is guarded: before torch.jit.load sees the file, every pickle inside the archive is
scanned and refused if it references anything but TorchScript classes and torch's tensor
rebuild helpers, so a crafted file cannot run arbitrary Python while loading.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickletools
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from abpn_cli import __version__
from abpn_cli.engine.device import resolve_device
from abpn_cli.engine.errors import EngineError
from abpn_cli.engine.modelcard import ModelCard
from abpn_cli.model import ABPN, ABPNConfig

FORMAT = "abpn-torchscript/1"
META_NAME = "abpn.json"
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch.jit._pickle", "build_intlist"),
    ("torch.jit._pickle", "build_tensorlist"),
    ("torch.jit._pickle", "build_doublelist"),
    ("torch.jit._pickle", "build_boollist"),
    ("torch.jit._pickle", "restore_type_tag"),
}
_SAFE_STORAGES = {"FloatStorage", "HalfStorage", "LongStorage", "IntStorage", "BoolStorage"}


@dataclass
class LoadedModel:
    """A model file loaded onto a device, ready for engine.retouch."""

    module: torch.jit.ScriptModule
    path: Path
    sha256: str
    config: ABPNConfig
    metadata: dict = field(default_factory=dict)  # abpn.json; ModelCard.from_meta reads it
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    # The refining module's phi2 is exactly zero (as initialised, never trained): Eq. 5 is then
    # B_i = up(B_{i+1}) bit for bit, and the engine skips phi1/phi2 and H_i altogether.
    refine_is_upsample: bool = False
    # The six blend scalars j_i, k_i, read once: level 0 applies Eq. 3 through the eager
    # `model.blend_apply` (measured: the scripted method took 50-280 ms per 512^2 tile, eager
    # ~5 ms). Empty: call the model file's own apply_blend.
    blend_jk: tuple[torch.Tensor, torch.Tensor] | None = None
    # The file has `coarse_where` (files exported since it exists): the LRL's full-resolution
    # LAMs then run only where the sensitivity gate can keep an edit.
    has_coarse_where: bool = False


DEFAULT_MODEL = "abpn-default.pt"


def default_model_path() -> Path:
    """The shipped default model: package data `abpn_cli/weights/abpn-default.pt`.

    It lives inside the package (not beside it) so that a wheel or a plain `pip install .`
    carries it; `ABPN_MODEL` overrides it.
    """
    env = os.environ.get("ABPN_MODEL")
    if env:
        return Path(env)
    return Path(str(resources.files("abpn_cli") / "weights" / DEFAULT_MODEL))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_sha256(model: torch.nn.Module) -> str:
    """Hash of the parameters and buffers, stable across re-exports of the same weights."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_model_file(model: ABPN, path: Path, card: ModelCard | None = None) -> str:
    """Script `model`, write it atomically with its config and card; return file sha256."""
    model = model.cpu().eval()
    meta = {
        "format": FORMAT,
        "abpn_version": __version__,
        "config": model.config.to_dict(),
        "weights_sha256": weights_sha256(model),
        **(card or ModelCard(kind="unknown")).to_meta(),
    }
    scripted = torch.jit.script(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.jit.save(scripted, tmp, _extra_files={META_NAME: json.dumps(meta, indent=2)})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model file is for everyone
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return file_sha256(path)


def _check_pickle(data: bytes, name: str) -> None:
    for op, arg, _pos in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
        elif op.name == "STACK_GLOBAL":
            raise EngineError(f"unsafe model file: {name} uses dynamic pickle imports")
        else:
            continue
        if module.startswith("__torch__"):
            continue
        if module == "torch" and attr in _SAFE_STORAGES:
            continue
        if (module, attr) not in _SAFE_GLOBALS:
            raise EngineError(f"unsafe model file: {name} references {module}.{attr}")


def inspect_model_file(path: Path) -> dict:
    """Validate the archive without executing anything from it; return its metadata."""
    path = Path(path)
    if not path.exists():
        raise EngineError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise EngineError(f"not an abpn model file (not a TorchScript archive): {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            meta_raw = None
            for info in archive.infolist():
                leaf = info.filename.rsplit("/", 1)[-1]
                if leaf.endswith(".pkl") or leaf.endswith(".debug_pkl"):
                    _check_pickle(archive.read(info), info.filename)
                if info.filename.endswith(f"extra/{META_NAME}"):
                    meta_raw = archive.read(info)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise EngineError(f"model file is damaged: {path}: {exc}") from exc
    if meta_raw is None:
        raise EngineError(f"not an abpn model file (no {META_NAME} inside): {path}")
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError as exc:
        raise EngineError(f"model file metadata is not valid JSON: {path}") from exc
    if meta.get("format") != FORMAT:
        raise EngineError(f"unsupported model format {meta.get('format')!r} in {path}")
    return meta


def load_model(path: Path | None = None, device: str = "auto", half: bool = False) -> LoadedModel:
    """Load a model file onto a device. fp16 only on CUDA (CPU fp16/bf16 is slower here)."""
    path = Path(path) if path is not None else default_model_path()
    meta = inspect_model_file(path)
    dev = resolve_device(device)
    try:
        module = torch.jit.load(str(path), map_location=dev)
    except Exception as exc:  # torch raises RuntimeError/ValueError variants for bad archives
        raise EngineError(f"cannot load model file {path}: {exc}") from exc
    module.eval()
    dtype = torch.float16 if (half and dev.type == "cuda") else torch.float32
    if dtype == torch.float16:
        module.half()
    if dev.type == "cpu":
        module = module.to(memory_format=torch.channels_last)
    return LoadedModel(
        module=module,
        path=path,
        sha256=file_sha256(path),
        config=ABPNConfig.from_dict(meta.get("config", {})),
        metadata=meta,
        device=dev,
        dtype=dtype,
        refine_is_upsample=refiner_is_upsample(module),
        blend_jk=_blend_scalars(module),
        has_coarse_where=hasattr(module, "coarse_where"),
    )


def _blend_scalars(module: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        return module.blend_fn.j.detach().clone(), module.blend_fn.k.detach().clone()
    except AttributeError:
        return None


def refiner_is_upsample(module: torch.nn.Module) -> bool:
    """True when phi2's weight and bias are all zero (then Eq. 5 adds exactly nothing)."""
    try:
        phi2 = module.refiner.phi2
        return bool((phi2.weight == 0).all()) and bool((phi2.bias == 0).all())
    except AttributeError:
        return False


def load_eager(path: Path) -> tuple[ABPN, dict]:
    """Rebuild the eager (trainable) ABPN from a model file, for fine-tuning."""
    meta = inspect_model_file(Path(path))
    scripted = torch.jit.load(str(path), map_location="cpu")
    model = ABPN(ABPNConfig.from_dict(meta.get("config", {})))
    model.load_state_dict(scripted.state_dict())
    return model, meta
