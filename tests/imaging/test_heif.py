"""HEIC/HEIF in and out: bit depth, alpha, EXIF/XMP/ICC bytes, sniffing by content."""

from pathlib import Path

import numpy as np
import pytest

from abpn_cli.imaging import ImageError, read_photo, save_photo
from abpn_cli.imaging.photo import HeifInfo, PhotoMetadata
from tests.imaging.helpers import exif_block, icc_profile

DATA = Path(__file__).parent.parent / "data" / "heif"  # pillow-heif test images, BSD-3


def test_a_10_bit_heif_is_read_as_16_bit_and_written_back_at_10_bits(tmp_path):
    photo = read_photo(DATA / "RGB_10__29x100.heif")
    assert photo.fmt == "heif" and photo.pixels.dtype == np.uint16
    assert photo.meta.heif == HeifInfo(10) and photo.pixels.shape == (100, 29, 3)
    assert (photo.pixels & 0x3F).max() == 0  # 10 significant bits in the top of 16
    save_photo(photo, photo.pixels, tmp_path / "o.heic")
    again = read_photo(tmp_path / "o.heic")
    assert again.meta.heif == HeifInfo(10)
    change = np.abs(again.pixels.astype(np.int32) - photo.pixels).mean() / 257
    assert change < 1.0  # lossy like JPEG, but close (in 1/255)


def test_alpha_passes_through(tmp_path):
    photo = read_photo(DATA / "RGBA_8__29x100.heif")
    assert photo.alpha is not None and photo.pixels.dtype == np.uint8
    save_photo(photo, photo.pixels, tmp_path / "o.heic")
    again = read_photo(tmp_path / "o.heic")
    assert again.alpha is not None
    assert np.abs(again.alpha.astype(int) - photo.alpha).mean() < 2


def test_exif_xmp_and_icc_bytes_survive_a_round_trip(tmp_path):
    photo = read_photo(DATA / "RGB_10__29x100.heif")
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    photo.meta = PhotoMetadata(exif=exif_block(), xmp=xmp, icc=icc_profile(), heif=photo.meta.heif)
    save_photo(photo, photo.pixels, tmp_path / "m.heic")
    again = read_photo(tmp_path / "m.heic")
    assert again.meta.exif == photo.meta.exif
    assert again.meta.xmp == xmp
    assert again.meta.icc == photo.meta.icc


def test_format_comes_from_the_bytes_and_a_broken_file_says_so(tmp_path):
    named_jpg = tmp_path / "really-heif.jpg"
    named_jpg.write_bytes((DATA / "RGB_10__29x100.heif").read_bytes())
    assert read_photo(named_jpg).fmt == "heif"
    cut = tmp_path / "cut.heic"
    cut.write_bytes((DATA / "RGB_10__29x100.heif").read_bytes()[:600])
    with pytest.raises(ImageError, match="HEIF"):
        read_photo(cut)


def test_a_rotated_heif_is_written_upright_once_with_orientation_one(tmp_path):
    """An iPhone portrait: stored landscape with irot and EXIF Orientation 6. It is read
    upright; written back, it must stay upright for every viewer (no irot, Orientation 1)."""
    import pillow_heif

    from abpn_cli.imaging.exif import orientation

    stored = np.zeros((40, 64, 3), np.uint8)
    stored[:, :16] = (250, 20, 20)  # a red band at the stored image's left edge
    heif = pillow_heif.from_bytes("RGB", (64, 40), stored.tobytes())
    heif.save(tmp_path / "portrait.heic", exif=b"Exif\x00\x00" + exif_block(orientation=6))
    photo = read_photo(tmp_path / "portrait.heic")
    assert photo.pixels.shape[:2] == (64, 40)  # turned upright by the decoder
    save_photo(photo, photo.pixels, tmp_path / "out.heic")
    again = read_photo(tmp_path / "out.heic")
    assert again.pixels.shape == photo.pixels.shape
    assert np.abs(again.pixels.astype(int) - photo.pixels).mean() < 4  # not turned again
    assert orientation(again.meta.exif) == 1
    assert again.meta.exif.replace(b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x01", b"") == (
        exif_block(orientation=6).replace(b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06", b"")
    )  # every other EXIF byte as it was
