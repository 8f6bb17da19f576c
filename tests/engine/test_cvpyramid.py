"""OpenCV's pyrDown is the model's pyr_down (within float rounding), banded or whole."""

import numpy as np
import pytest
import torch

from abpn_cli.engine.cvpyramid import BAND, pyr_down_hwc, pyr_down_native
from abpn_cli.engine.geometry import reflect_pad
from abpn_cli.model import pyr_down


def _torch_down(hwc: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1)[None]
    return pyr_down(t)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("shape", [(64, 96), (130, 66)])
def test_opencv_down_equals_the_model_pyramid(shape):
    img = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    assert np.abs(pyr_down_hwc(img) - _torch_down(img)).max() < 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_banded_native_down_equals_the_whole_frame_down(dtype):
    scale = float(np.iinfo(dtype).max)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, int(scale) + 1, (2 * BAND + 136, 200, 3), dtype=dtype)
    whole = _torch_down(frame.astype(np.float32) / np.float32(scale))
    assert np.abs(pyr_down_native(frame, scale) - whole).max() < 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_native_down_pads_band_by_band_as_the_padded_frame(dtype):
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 200, (BAND + 77, 150, 3), dtype=dtype)
    size = (2 * BAND, 256)  # rows and columns past the frame, some bands wholly outside it
    padded = reflect_pad(frame, *size)
    assert np.array_equal(pyr_down_native(frame, 255.0, size), pyr_down_native(padded, 255.0))
