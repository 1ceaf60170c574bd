"""Image decoding: every mode lands in 8-bit RGB, bad bytes get clear codes, bombs are refused early."""

import io

import numpy as np
import pytest
from PIL import Image

from oncoserve_runtime import ApiError, decode_image


def encode(img: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def error_of(data: bytes, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode_image(data, **kwargs)
    return caught.value


def test_rgb_png_round_trips_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = decode_image(encode(Image.fromarray(pixels)))
    assert out.mode == "RGB" and out.size == (30, 20)
    assert np.array_equal(np.asarray(out), pixels)


def test_greyscale_is_replicated_to_three_channels():
    out = np.asarray(decode_image(encode(Image.new("L", (4, 4), 77))))
    assert out.shape == (4, 4, 3) and (out == 77).all()


def test_transparent_pixels_become_white_and_opaque_keep_colour():
    img = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    img.putpixel((1, 0), (200, 10, 10, 255))
    out = np.asarray(decode_image(encode(img)))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [200, 10, 10]


def test_palette_with_transparency_is_composited():
    img = Image.new("P", (2, 2), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    out = np.asarray(decode_image(encode(img, transparency=0)))
    assert (out == 255).all()


def test_cmyk_jpeg_is_converted():
    out = decode_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    red, green, blue = np.asarray(out)[4, 4]
    assert out.mode == "RGB" and red > 200 and green < 60 and blue < 60


def test_16_bit_greyscale_is_stretched_not_clipped():
    # 12-bit CT values in a 16-bit container: 0..4095 must span 0..255, not stay near black.
    ramp = np.linspace(0, 4095, 64, dtype=np.uint16).reshape(8, 8)
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    out = np.asarray(decode_image(encode(img)))
    assert out.min() == 0 and out.max() == 255 and out.shape == (8, 8, 3)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = decode_image(encode(img, "JPEG", exif=exif))
    assert out.size == (20, 40)


@pytest.mark.parametrize(
    "data, status, code",
    [
        (b"", 415, "not_an_image"),
        (b"%PDF-1.4 hello", 415, "not_an_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, 415, "not_an_image"),
    ],
)
def test_non_images_are_415(data, status, code):
    err = error_of(data)
    assert (err.status, err.code) == (status, code)


def test_gif_is_unsupported_media():
    err = error_of(encode(Image.new("RGB", (4, 4)), "GIF"))
    assert (err.status, err.code) == (415, "unsupported_image_format")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_refused_not_half_decoded(fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    err = error_of(data[: len(data) // 2])
    assert (err.status, err.code) == (422, "corrupt_image")


def test_decompression_bomb_is_refused_from_the_header():
    bomb = encode(Image.new("1", (8000, 8000)), optimize=True)  # 64 Mpx in a few kB
    assert len(bomb) < 100_000
    err = error_of(bomb, max_pixels=4096 * 4096)
    assert (err.status, err.code) == (413, "image_too_large")


def test_too_small_images_are_refused():
    err = error_of(encode(Image.new("RGB", (10, 3))), min_side=8)
    assert (err.status, err.code) == (422, "image_too_small")
