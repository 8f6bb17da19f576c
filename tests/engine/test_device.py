import pytest
import torch

from abpn_cli.engine import EngineError, resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error():
    with pytest.raises(EngineError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_unknown_device_is_rejected():
    with pytest.raises(EngineError, match="unknown device"):
        resolve_device("tpu")
