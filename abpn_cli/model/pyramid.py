"""Laplacian pyramid (Burt & Adelson) with a fixed 5x5 binomial kernel (ABPN Sec. 4.1).

Decision (docs/ARCHITECTURE.md): kernel [1,4,6,4,1]^T [1,4,6,4,1] / 256, reflect padding,
decimate by 2;
expansion reflect-pads the coarse image by one sample, zero-inserts to 2x and filters with the
same kernel x4. It is computed separably in polyphase form (two 1-D passes of slicing
arithmetic): the same sum as filtering the inserted zeros, several times cheaper than a
depthwise convolution (tests check it against the literal form).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def binomial_kernel(channels: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Depthwise 5x5 binomial kernel, shape (channels, 1, 5, 5), summing to 1."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=dtype, device=device)
    k2 = torch.outer(k1, k1) / 256.0
    return k2.expand(channels, 1, 5, 5).contiguous()


def pyr_down(x: Tensor) -> Tensor:
    """I_{i+1} = down(I_i): blur with the binomial kernel, keep every second pixel."""
    c = x.shape[1]
    xp = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(xp, binomial_kernel(c, x.dtype, x.device), stride=2, groups=c)


def _expand_dim(x: Tensor, dim: int) -> Tensor:
    """1-D polyphase expand along `dim` of a sequence reflect-padded by one sample.

    With taps [1,4,6,4,1]/8 on the zero-inserted signal, even outputs are
    (x[i-1] + 6 x[i] + x[i+1]) / 8 and odd outputs (x[i] + x[i+1]) / 2.
    """
    n = x.shape[dim] - 2
    left = x.narrow(dim, 0, n)
    mid = x.narrow(dim, 1, n)
    right = x.narrow(dim, 2, n)
    even = (left + 6.0 * mid + right) * 0.125
    odd = (mid + right) * 0.5
    shape = list(even.shape)
    shape[dim] = 2 * n
    return torch.stack([even, odd], dim=dim + 1).reshape(shape)


def pyr_up(x: Tensor) -> Tensor:
    """Laplacian expand: reflect-pad by 1, zero-insert to 2x, filter with 4x the kernel."""
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return _expand_dim(_expand_dim(xp, 3), 2)


def laplacian_pyramid(image: Tensor, levels: int) -> tuple[list[Tensor], list[Tensor]]:
    """Return (I_0..I_l, H_0..H_{l-1}) with H_i = I_i - up(I_{i+1})."""
    gauss = [image]
    for _ in range(levels):
        gauss.append(pyr_down(gauss[-1]))
    high = [gauss[i] - pyr_up(gauss[i + 1]) for i in range(levels)]
    return gauss, high
