"""A narrower LRL warm-started from a trained one: keep each layer's strongest channels.

Why: the dust LRL's cost on a 1.5 MP thumbnail is the convolutions at I_l/16 .. I_l/4, whose
FLOPs grow with width squared; a student at half width costs about half the time (measured,
docs/DUST.md). Trained from scratch it would need the teacher's ~700 k samples again; started
from the teacher's strongest channels (network slimming, Liu et al. 2017: |BN gamma| for a
conv + BN block, the L1 norm of the feature filter for a gated conv) it starts close.

Only channel *selection*: every kept weight is the teacher's own, so the student is the
teacher with the weakest channels cut, and fine-tuning (`train-dust --init-from`) repairs the
rest. Heads keep all outputs; the detail input (6 channels) and the thumbnail are kept whole.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from abpn_cli.model import ABPN, ABPNConfig
from abpn_cli.model.lrl import ConvBlock, GatedConv

Index = Tensor  # 1-D long tensor of kept channel numbers


def half_widths(config: ABPNConfig) -> ABPNConfig:
    """The same architecture at half width (at least 4 channels a layer)."""

    def half(ws: list[int]) -> list[int]:
        return [max(4, w // 2) for w in ws]

    return replace(
        config,
        encoder_widths=half(config.encoder_widths),
        mask_widths=half(config.mask_widths),
        lrb_widths=half(config.lrb_widths),
    )


def _strongest(scores: Tensor, keep: int) -> Index:
    """The `keep` highest-scoring channels, in their original order."""
    return scores.topk(keep).indices.sort().values


def _cat(*parts: tuple[Index, int]) -> Index:
    """Input channels of a concatenation: each part's kept indices shifted by the widths before."""
    out, offset = [], 0
    for kept, width in parts:
        out.append(kept + offset)
        offset += width
    return torch.cat(out)


def _all(n: int) -> tuple[Index, int]:
    return torch.arange(n), n


def _cut_block(src: ConvBlock, dst: ConvBlock, cin: Index) -> Index:
    """Copy a conv + BN block's strongest outputs over the kept inputs; returns the kept outputs."""
    kept = _strongest(src.bn.weight.detach().abs(), dst.conv.out_channels)
    dst.conv.weight.data.copy_(src.conv.weight.data[kept][:, cin])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst.bn, name).data.copy_(getattr(src.bn, name).data[kept])
    return kept


def _cut_gated(src: GatedConv, dst: GatedConv, cin: Index) -> Index:
    """Copy a gated conv's strongest (feature, gate) pairs; scored by the feature filter's L1."""
    full, cout = src.conv.out_channels // 2, dst.conv.out_channels // 2
    kept = _strongest(src.conv.weight.detach()[:full].abs().sum((1, 2, 3)), cout)
    rows = torch.cat([kept, kept + full])
    dst.conv.weight.data.copy_(src.conv.weight.data[rows][:, cin])
    dst.conv.bias.data.copy_(src.conv.bias.data[rows])
    return kept


def _cut_head(src: nn.Conv2d, dst: nn.Conv2d, cin: Index) -> None:
    dst.weight.data.copy_(src.weight.data[:, cin])
    dst.bias.data.copy_(src.bias.data)


@torch.no_grad()
def slim_from(teacher: ABPN, config: ABPNConfig) -> ABPN:
    """A new ABPN of `config` (narrower widths) holding the teacher's strongest channels.

    The pyramid part (blend, refiner) is copied whole; the LRL layer by layer, each layer's
    inputs following the channels its producers kept.
    """
    student = ABPN(config)
    t, s = teacher.lrl, student.lrl
    tw = teacher.config.encoder_widths
    cin, enc = _all(6 if config.detail_input else 3), []
    for tb, sb in zip(t.encoder.blocks, s.encoder.blocks, strict=True):
        enc.append(_cut_block(tb, sb, cin[0]))
        cin = (enc[-1], tb.conv.out_channels)
    skips = [_all(3), *zip(enc, tw, strict=True)]  # skip k: (kept, full width)

    x = skips[6]
    for i, (tb, sb) in enumerate(zip(t.mask_branch.blocks, s.mask_branch.blocks, strict=True)):
        x = (_cut_block(tb, sb, _cat(x, skips[5 - i])), tb.conv.out_channels)
    _cut_head(t.mask_branch.head, s.mask_branch.head, x[0])

    tr, sr = t.retouch_branch, s.retouch_branch
    x = skips[6]
    for i, (tl, sl) in enumerate(zip(tr.lams, sr.lams, strict=True)):
        cin = _cat(x, skips[5 - i], _all(1))  # Cat(up(x), F_skip, M)
        x = (_cut_gated(tl.gated, sl.gated, cin), tl.gated.conv.out_channels // 2)
    _cut_head(tr.head, sr.head, x[0])

    student.blend_fn.load_state_dict(teacher.blend_fn.state_dict())
    student.refiner.load_state_dict(teacher.refiner.state_dict())
    return student
