"""The aperture a frame was shot at, read from its EXIF block (for the dust profile)."""

import pytest

from abpn_cli.imaging.exif import f_number
from tests.imaging.helpers import exif_block, little_endian_exif


@pytest.mark.parametrize(("stored", "read"), [((28, 10), 2.8), ((16, 1), 16.0), ((0, 1), None)])
def test_fnumber_is_read_from_the_exif_ifd(stored, read) -> None:
    assert f_number(exif_block(f_number=stored)) == read


@pytest.mark.parametrize("block", [None, b"", b"not a tiff block", b"MM\0*\0\0\0\x08\xff"])
def test_no_or_broken_exif_reads_as_unknown(block) -> None:
    assert f_number(block) is None


def test_a_block_without_the_tag_reads_as_unknown() -> None:
    assert f_number(little_endian_exif()) is None
