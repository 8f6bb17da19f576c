"""ABPN as pure nn.Modules: no file or device handling lives here."""

from abpn_cli.model.abpn import ABPN, ABPNConfig, ABPNOutput, count_parameters
from abpn_cli.model.blend import BLEND_MAX, BLEND_MIN, AdaptiveBlend, blend_apply
from abpn_cli.model.lrl import (
    GatedConv,
    LocalAttentiveModule,
    LocalRetouchingBranch,
    LocalRetouchingLayer,
    MaskBranch,
    MutualEncoder,
)
from abpn_cli.model.pyramid import laplacian_pyramid, pyr_down, pyr_up
from abpn_cli.model.refine import RefiningModule, upsample2x

__all__ = [
    "ABPN",
    "BLEND_MAX",
    "BLEND_MIN",
    "ABPNConfig",
    "ABPNOutput",
    "AdaptiveBlend",
    "GatedConv",
    "LocalAttentiveModule",
    "LocalRetouchingBranch",
    "LocalRetouchingLayer",
    "MaskBranch",
    "MutualEncoder",
    "RefiningModule",
    "blend_apply",
    "count_parameters",
    "laplacian_pyramid",
    "pyr_down",
    "pyr_up",
    "upsample2x",
]
