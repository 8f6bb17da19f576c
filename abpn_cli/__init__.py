"""abpn: batch local retouching of ultra-high-resolution photos with ABPN (CVPR 2022)."""

__version__ = "0.1.0"
