"""Thumbnails: bytes in, a 512x512 PNG or JPEG within the lexicon's maxSize out."""

import io
import json
import os
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image, ImageFile, ImageOps

from migrator.models import ErrorKind, SkipReason
from migrator.thumbnails import THUMBNAIL_MAX_BYTES, ThumbnailError, make_thumbnail

LEXICON = Path(__file__).resolve().parent.parent / "lexicons/computer/aesthetic/painting.json"
BLOB = json.loads(LEXICON.read_text())["defs"]["main"]["record"]["properties"]["thumbnail"]
FORMAT_OF_MIME = {"image/png": "PNG", "image/jpeg": "JPEG"}

# Modest example counts: each example encodes and decodes real images.
FEW_EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encode(image, format="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def noise(mode, size, seed=0):
    bands = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, size, random.Random(seed).randbytes(size[0] * size[1] * bands))


def assert_fits_the_lexicon(thumbnail):
    assert thumbnail.mime_type in BLOB["accept"]
    assert thumbnail.size == len(thumbnail.content) <= BLOB["maxSize"]
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        assert decoded.format == FORMAT_OF_MIME[thumbnail.mime_type]
        assert decoded.size == (thumbnail.width, thumbnail.height) == (512, 512)
        decoded.load()


def test_the_size_limit_is_the_lexicons():
    assert THUMBNAIL_MAX_BYTES == BLOB["maxSize"]
    assert ThumbnailError.kind == ErrorKind.PERMANENT
    assert ThumbnailError.skip_reason == SkipReason.INVALID_IMAGE


# --- Property: every image that decodes becomes a thumbnail within the lexicon -


MODES = ["RGBA", "RGB", "LA", "L", "P", "1", "I;16", "I", "F", "CMYK"]
FORMATS_FOR_MODE = {"CMYK": ["JPEG", "TIFF"], "I": ["TIFF"], "F": ["TIFF"], "LA": ["PNG"], "I;16": ["PNG", "TIFF"]}


@st.composite
def paintings(draw):
    mode = draw(st.sampled_from(MODES))
    width = draw(st.one_of(st.integers(1, 64), st.integers(65, 1400)))
    height = draw(st.one_of(st.integers(1, 64), st.integers(65, 1400), st.just(width)))
    content = draw(st.sampled_from(["flat", "noise", "blocks"]))
    if content == "noise" and mode not in ("I", "F", "I;16"):
        image = noise(mode, (width, height), seed=draw(st.integers(0, 2**16)))
    else:
        image = Image.new(mode, (width, height), draw(st.integers(0, 255)))
        if content == "blocks":
            for _ in range(draw(st.integers(1, 12))):
                x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
                image.paste(draw(st.integers(0, 255)), (x, y, min(width, x + 40), min(height, y + 40)))
    if mode == "P":
        image.info["transparency"] = draw(st.integers(0, 255))
    format = draw(st.sampled_from(FORMATS_FOR_MODE.get(mode, ["PNG", "TIFF"] if mode != "RGBA" else ["PNG", "TIFF"])))
    return encode(image, format)


@FEW_EXAMPLES
@given(paintings())
def test_every_painting_gets_a_thumbnail_within_the_lexicon(painting):
    assert_fits_the_lexicon(make_thumbnail(painting))


@pytest.mark.slow
@settings(FEW_EXAMPLES, max_examples=15)
@given(max_bytes=st.integers(1_000, 120_000), seed=st.integers(0, 2**16))
def test_the_limit_holds_for_any_max_bytes_even_on_noise(max_bytes, seed):
    thumbnail = make_thumbnail(encode(noise("RGBA", (700, 600), seed)), max_bytes=max_bytes)
    assert thumbnail.size <= max_bytes
    assert (thumbnail.width, thumbnail.height) == (512, 512)


# --- Faithfulness -----------------------------------------------------------------


def test_a_flat_painting_stays_a_lossless_png():
    thumbnail = make_thumbnail(encode(Image.new("RGBA", (1024, 1024), (10, 200, 30, 255))))
    assert (thumbnail.mime_type, thumbnail.fallback) == ("image/png", "png")


def test_a_painting_whose_quick_png_is_over_the_limit_stays_lossless_when_a_smaller_one_fits():
    """The first lossless try is quick and a little larger: a limit just
    under its size still gets every pixel, in a PNG compressed harder."""
    chance = random.Random(2)
    colours = [(chance.randrange(256), chance.randrange(256), chance.randrange(256)) for _ in range(40)]
    art = Image.new("RGB", (128, 128))
    art.putdata([colours[min(39, int(chance.expovariate(0.15)))] for _ in range(128 * 128)])
    quick = make_thumbnail(encode(art))
    assert quick.fallback == "png"

    thumbnail = make_thumbnail(encode(art), max_bytes=quick.size - 1)

    assert (thumbnail.mime_type, thumbnail.fallback) == ("image/png", "png")
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        assert decoded.convert("RGB").tobytes() == art.resize((512, 512), Image.NEAREST).tobytes()


def test_pixel_art_of_many_colours_keeps_every_colour_when_it_needs_a_palette():
    """200 colours whose plain PNG is over the limit: the palette PNG that
    fits keeps each pixel's colour exactly (a faster palette search moves
    colours by a level)."""
    chance = random.Random(1)
    colours = [(chance.randrange(256), chance.randrange(256), chance.randrange(256)) for _ in range(200)]
    art = Image.new("RGB", (128, 128))
    art.putdata([colours[chance.randrange(200)] for _ in range(128 * 128)])
    thumbnail = make_thumbnail(encode(art), max_bytes=50_000)
    assert thumbnail.fallback == "png-quantized-256"
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        assert decoded.convert("RGB").tobytes() == art.resize((512, 512), Image.NEAREST).tobytes()


def test_enlarged_pixel_art_stays_crisp():
    checkerboard = Image.new("RGB", (2, 2), (255, 255, 255))
    checkerboard.putpixel((0, 0), (0, 0, 0))
    checkerboard.putpixel((1, 1), (0, 0, 0))
    thumbnail = make_thumbnail(encode(checkerboard))
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        rgb = decoded.convert("RGB")
    assert sorted(colour for _, colour in rgb.getcolors()) == [(0, 0, 0), (255, 255, 255)]
    assert rgb.getpixel((0, 0)) == rgb.getpixel((511, 511)) == (0, 0, 0)
    assert rgb.getpixel((511, 0)) == rgb.getpixel((0, 511)) == (255, 255, 255)


def test_it_crops_the_centre_of_a_wide_painting():
    wide = Image.new("RGB", (3000, 1000), (255, 0, 0))
    wide.paste((0, 0, 255), (1000, 0, 2000, 1000))
    thumbnail = make_thumbnail(encode(wide))
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        # Lanczos reaches a pixel or two past the crop's edges; inside, all blue.
        assert decoded.convert("RGB").crop((3, 0, 509, 512)).getcolors() == [(506 * 512, (0, 0, 255))]
    assert (thumbnail.source_width, thumbnail.source_height) == (3000, 1000)


def test_it_keeps_transparency_in_png():
    painting = Image.new("RGBA", (600, 600), (0, 0, 0, 0))
    painting.paste((255, 0, 0, 255), (0, 0, 300, 600))
    with Image.open(io.BytesIO(make_thumbnail(encode(painting)).content)) as decoded:
        rgba = decoded.convert("RGBA")
    assert rgba.getpixel((10, 10)) == (255, 0, 0, 255)
    assert rgba.getpixel((500, 10))[3] == 0


def test_jpeg_fallback_flattens_transparency_onto_white():
    painting = noise("RGB", (512, 512)).convert("RGBA")
    painting.putalpha(Image.new("L", (512, 512), 255))
    painting.paste((0, 0, 0, 0), (300, 0, 512, 512))  # transparent black on the right
    thumbnail = make_thumbnail(encode(painting))
    assert thumbnail.fallback.startswith("jpeg-")
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        assert min(decoded.crop((312, 0, 512, 512)).convert("L").getextrema()) > 240


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_it_applies_the_exif_orientation(orientation):
    painting = Image.new("RGB", (800, 600), (255, 0, 0))
    painting.paste((0, 0, 255), (100, 0, 400, 300))  # the top-left quarter of the centre square
    exif = Image.Exif()
    exif[0x0112] = orientation
    content = encode(painting, "JPEG", exif=exif, quality=95)
    expected = ImageOps.fit(ImageOps.exif_transpose(Image.open(io.BytesIO(content))), (512, 512))
    with Image.open(io.BytesIO(make_thumbnail(content).content)) as decoded:
        actual = decoded.convert("RGB")
    for point in [(128, 128), (384, 128), (128, 384), (384, 384)]:
        assert max(abs(a - b) for a, b in zip(actual.getpixel(point), expected.getpixel(point))) < 40


def test_a_thumbnail_carries_no_metadata_from_the_painting():
    exif = Image.Exif()
    exif[0x013B] = "Painter's real name"  # Artist
    exif[0x0112] = 6
    for format in ["JPEG", "PNG"]:
        thumbnail = make_thumbnail(encode(noise("RGB", (700, 700)) if format == "JPEG" else Image.new("RGB", (700, 700)), format, exif=exif))
        assert b"real name" not in thumbnail.content, format
        with Image.open(io.BytesIO(thumbnail.content)) as decoded:
            assert not decoded.getexif(), format


def test_it_scales_16_bit_greyscale_instead_of_clipping_it():
    grey = Image.new("I;16", (100, 100), 128 * 257)
    grey.paste(65535, (0, 0, 50, 100))
    with Image.open(io.BytesIO(make_thumbnail(encode(grey)).content)) as decoded:
        assert sorted(colour for _, colour in decoded.convert("L").getcolors()) == [128, 255]


def test_it_uses_the_first_frame_of_an_animation():
    frames = [Image.new("RGB", (64, 64), colour) for colour in [(255, 0, 0), (0, 255, 0)]]
    for format in ["GIF", "PNG", "WEBP"]:
        content = encode(frames[0], format, save_all=True, append_images=frames[1:], lossless=True)
        with Image.open(io.BytesIO(make_thumbnail(content).content)) as decoded:
            assert decoded.convert("RGB").getpixel((256, 256)) == (255, 0, 0), format


@pytest.mark.parametrize("size", [(1, 1), (10000, 1), (1, 10000), (513, 511)])
def test_tiny_and_extreme_shapes_become_512_squares(size):
    assert_fits_the_lexicon(make_thumbnail(encode(Image.new("RGBA", size, (1, 2, 3, 4)))))


def test_a_jpeg_named_anything_is_read_by_its_content():
    thumbnail = make_thumbnail(encode(noise("RGB", (900, 700)), "JPEG"))
    assert thumbnail.source_format == "JPEG"
    assert_fits_the_lexicon(thumbnail)


# --- Hostile files ----------------------------------------------------------------


def refusal(content, **options):
    with pytest.raises(ThumbnailError) as caught:
        make_thumbnail(content, **options)
    assert caught.value.kind == "permanent" and caught.value.skip_reason == "invalid_image"
    return caught.value.message


def bomb_png(width, height):
    """A valid PNG header claiming ``width``x``height`` with a tiny body: a
    decompression bomb as it arrives, before anything is decoded."""
    def chunk(kind, body):
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(9000, 9000), (20000, 20000), (100000, 100000)])
def test_it_refuses_a_decompression_bomb_before_decoding(width, height):
    assert "bomb" in refusal(bomb_png(width, height)) or "too large" in refusal(bomb_png(width, height))


def test_the_pixel_limit_is_a_parameter_not_global_state():
    painting = encode(Image.new("RGB", (200, 200)))
    assert "40,000 pixels" in refusal(painting, max_pixels=39_999)
    assert make_thumbnail(painting, max_pixels=40_000).width == 512
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > 8192 * 8192


def test_it_refuses_an_html_page():
    assert "HTML page" in refusal(b"<!DOCTYPE html>\n<html><head><title>404</title></head></html>")


def test_it_refuses_an_empty_body():
    assert "empty" in refusal(b"")


def test_it_refuses_a_format_it_does_not_read_by_name():
    message = refusal(encode(Image.new("RGB", (64, 64)), "BMP"))
    assert message.startswith("A BMP image") and "PNG, JPEG" in message


def test_it_refuses_random_bytes():
    assert "Not an image" in refusal(os.urandom(5000))


def test_it_refuses_a_truncated_png():
    content = encode(noise("RGB", (300, 300)))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    # A PNG cut after its last pixel row (only the trailer lost) decodes whole
    # and is accepted; any cut that loses pixels is refused.
    for cut in [len(content) // 2, len(content) * 9 // 10, 60, 33]:
        message = refusal(content[:cut])
        assert "truncated" in message or "corrupt" in message


def test_it_refuses_a_truncated_jpeg():
    content = encode(noise("RGB", (300, 300)), "JPEG")
    assert "truncated" in refusal(content[: len(content) // 2])
