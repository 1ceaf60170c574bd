"""A slide read in bands of tile rows (what each chunk of a slide job reads) equals the whole slide read
at once, for whole and fractional resampling ratios, and a band decodes only its own tiles."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions" / "histopathology"))
from slides import read_slide  # noqa: E402


def tiff(mpp: float, height: int = 1000, width: int = 900) -> bytes:
    import tifffile

    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, tile=(64, 64), compression="zlib", photometric="rgb",
                     resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    return buffer.getvalue()


class CountingFile(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


@pytest.mark.parametrize("mpp, height, count", [
    (4.0, 1000, 3), (2.0, 1000, 3), (3.0, 1000, 3), (1.7, 1000, 3),  # as is; halved; 0.75 and 0.425 of the level
    *((mpp, height, count) for mpp in (0.9, 1.3, 2.1, 3.3) for height in (1003, 613) for count in (1, 2, 5, 13)),
])  # odd heights and fractional ratios put row centres on window edges, where floating point ties
def test_bands_put_together_are_the_whole_slide(mpp, height, count):
    data = tiff(mpp, height=height)
    whole = read_slide(io.BytesIO(data), tile=50)
    parts = [read_slide(io.BytesIO(data), tile=50, band=lambda rows, i=i: range(rows * i // count, rows * (i + 1) // count))
             for i in range(count)]
    assert [part.band for part in parts] == [range(whole.rows * i // count, whole.rows * (i + 1) // count) for i in range(count)]
    assert all((part.rows, part.cols) == (whole.rows, whole.cols) for part in parts)
    assert whole.pixels.shape == (whole.rows * 50, whole.cols * 50, 3)
    assert np.array_equal(np.concatenate([part.pixels for part in parts]), whole.pixels)


def test_a_band_reads_only_its_own_tiles():
    data = tiff(4.0, height=2000, width=1000)
    whole, band = CountingFile(data), CountingFile(data)
    read_slide(whole, tile=50)
    read_slide(band, tile=50, band=lambda rows: range(0, rows // 4))
    assert band.bytes_read < whole.bytes_read / 2


def test_an_empty_band_is_no_pixels():
    part = read_slide(io.BytesIO(tiff(4.0)), tile=50, band=lambda rows: range(3, 3))
    assert part.pixels.shape[0] == 0 and part.rows == 20


def test_area_resampling_averages_each_output_rows_source_rows():
    # A 2:1 level: every output pixel the rounded mean of its 2x2 source block.
    pixels = np.random.default_rng(1).integers(0, 255, (200, 150, 3), dtype=np.uint8)
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, tile=(64, 64), photometric="rgb", resolution=(1e4 / 2.0, 1e4 / 2.0),
                     resolutionunit="CENTIMETER")
    read = read_slide(io.BytesIO(buffer.getvalue()), tile=50)
    expected = pixels[:100, :100].astype(np.uint32).reshape(50, 2, 50, 2, 3).sum(axis=(1, 3))
    assert np.abs(read.pixels[:50, :50].astype(int) - (expected + 2) // 4).max() <= 1  # PIL rounds across a row
