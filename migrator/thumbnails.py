"""Painting thumbnails: image bytes in, a 512x512 PNG or JPEG out.

No Django and no network here, so the benchmark and the workers run the same
code. The result always fits the lexicon's thumbnail blob
(``accept: image/png, image/jpeg``, ``maxSize: 102400``): PNG first, then
fewer colours, then JPEG at decreasing quality, then two last resorts that are
small by construction. ``Thumbnail.fallback`` records which step was used.

The engine is libvips (``pyvips`` with ``pyvips-binary``, a prebuilt libvips
inside the wheel), the library behind the plan's sharp. Measured over the
sample corpus it costs 12.0 ms of CPU per painting where the same rules on
Pillow cost 24.1 ms: it streams the image through decode, crop and resize
instead of decoding it whole first, so it also holds a few rows of a large
painting rather than all of it. Only the loaders of ACCEPTED_FORMATS are ever
called, chosen by the file's signature.

Transparency is kept in PNG thumbnails and flattened onto white
(``JPEG_BACKGROUND``) for JPEG ones, because the painting viewer on
aesthetic.computer shows paintings on a light page.
"""

from dataclasses import dataclass, field

import pyvips

THUMBNAIL_SIDE = 512
THUMBNAIL_MAX_BYTES = 102400
DEFAULT_MAX_PIXELS = 8192 * 8192
JPEG_BACKGROUND = [255, 255, 255]

# Paintings are PNGs; the others are formats a browser could have saved.
# Anything else is refused as not an image, before any loader runs.
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "TIFF")

# A palette PNG of at most 256 colours, no dithering: dither noise both blurs
# pixel art and defeats PNG compression. Fewer colours than that degrade a
# painting more than the JPEG steps after it do.
QUANTIZED_BITS = (8,)
JPEG_QUALITIES = (85, 75, 60, 45, 30, 15)
# The last resorts: a 64x64 mosaic enlarged to 512x512 (at most 4,096 distinct
# blocks, so a few tens of KB whatever the content), then one solid colour.
MOSAIC_SIDE = 64
# zlib's level for the first, lossless try (6 is its default and libvips').
FAST_COMPRESSION = 2
# No metadata in a thumbnail: the orientation is already applied, and EXIF
# or XMP blocks could carry what the painter never meant to publish.
KEEP_NOTHING = 0

# Each worker thread makes its own thumbnails: libvips' own threads would only
# compete with them. Every painting is new, so its operation cache would only
# hold memory. Loaders libvips marks untrusted are never used.
pyvips.concurrency_set(1)
pyvips.cache_set_max(0)
pyvips.block_untrusted_set(True)

# Mirrors migrator.models.ErrorKind.PERMANENT and SkipReason.INVALID_IMAGE,
# kept as plain strings so this module needs no Django.
PERMANENT = "permanent"
INVALID_IMAGE = "invalid_image"


class ThumbnailError(Exception):
    """The bytes cannot become a thumbnail. Always permanent: the same bytes
    fail the same way, so the painting is skipped as ``invalid_image``."""

    kind = PERMANENT
    skip_reason = INVALID_IMAGE

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Thumbnail:
    content: bytes = field(repr=False)
    mime_type: str  # "image/png" or "image/jpeg"
    width: int
    height: int
    fallback: str  # "png", "png-quantized-256", "jpeg-q85", ... "png-solid"
    source_width: int
    source_height: int
    source_format: str  # as decoded, whatever the file was called: "PNG", "JPEG", ...

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def extension(self) -> str:
        return "png" if self.mime_type == "image/png" else "jpg"


def make_thumbnail(
    content: bytes,
    *,
    max_bytes: int = THUMBNAIL_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Thumbnail:
    """Make the 512x512 centred cover-crop thumbnail of an image.

    Returns a Thumbnail whose content is a PNG or JPEG of at most
    ``max_bytes``. Raises ThumbnailError for an empty body, bytes that are not
    an image in ACCEPTED_FORMATS, an image over ``max_pixels`` (decompression
    bomb, refused from its header), or a truncated or corrupt image;
    ValueError for a ``max_bytes`` too small for even a solid-colour PNG.
    """
    format = _format_of(content)
    image = _open(content, format, max_pixels=max_pixels)
    source_width, source_height = image.width, image.height
    image = _shrunk_on_load(content, format, image)
    square = _decoded(_cover_square(_working_copy(image)), format, len(content))
    # A centred square crop commutes with the EXIF rotations and flips, so the
    # orientation is applied to the 512x512 result rather than the full image.
    if _orientation(image) not in (0, 1):
        square = square.autorot()
    fallback, mime_type, encoded = _encode_within(square, max_bytes)
    return Thumbnail(
        content=encoded,
        mime_type=mime_type,
        width=square.width,
        height=square.height,
        fallback=fallback,
        source_width=source_width,
        source_height=source_height,
        source_format=format,
    )


SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}

LOADERS = {
    "PNG": pyvips.Image.pngload_buffer,
    "JPEG": pyvips.Image.jpegload_buffer,
    "GIF": pyvips.Image.gifload_buffer,  # the first frame of an animation
    "WEBP": pyvips.Image.webpload_buffer,  # likewise
    "TIFF": pyvips.Image.tiffload_buffer,  # the first page
}


def _format_of(content: bytes) -> str:
    """The image format the bytes' signature names, if it is one we read."""
    if not content:
        raise ThumbnailError("The image is empty (0 bytes).")
    format = _format_by_signature(content)
    if format is None:
        raise ThumbnailError(f"Not an image ({_describe(content)}).")
    if format not in ACCEPTED_FORMATS:
        raise ThumbnailError(f"A {format} image ({len(content):,} bytes): thumbnails are made from {', '.join(ACCEPTED_FORMATS)} only.")
    return format


def _format_by_signature(content: bytes) -> str | None:
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "WEBP"
    return next((format for signature, format in SIGNATURES.items() if content.startswith(signature)), None)


def _describe(content: bytes) -> str:
    """What the bytes look like, and their size, never the bytes themselves:
    a reply's content may be anything (an error page quoting a token)."""
    head = content[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        kind = "an HTML page"
    elif head.startswith(b"<?xml"):
        kind = "an XML document"
    elif head.startswith((b"{", b"[")):
        kind = "JSON, it seems"
    elif head and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        kind = "text"
    else:
        kind = "data of an unknown type"
    return f"{kind}, {len(content):,} bytes"


def _open(content: bytes, format: str, *, max_pixels: int, **options) -> pyvips.Image:
    """The image as its header describes it; nothing is decoded yet. The
    pixels stream from the bytes, top to bottom, when the result is made."""
    try:
        image = LOADERS[format](content, access="sequential", fail_on="error", **options)
    except pyvips.Error:
        raise ThumbnailError(f"The {format} image is truncated or corrupt ({len(content):,} bytes).") from None
    width, height = image.width, image.height
    if width * height > max_pixels:
        raise ThumbnailError(
            f"The image is {width}x{height} ({width * height:,} pixels), over the "
            f"limit of {max_pixels:,} pixels: refusing it as a possible decompression bomb."
        )
    return image


def _shrunk_on_load(content: bytes, format: str, image: pyvips.Image) -> pyvips.Image:
    """A JPEG decodes at 1/2, 1/4 or 1/8 scale for almost nothing: ask for
    the smallest that still leaves the cover square larger than the target,
    so the final Lanczos step still shrinks."""
    if format != "JPEG":
        return image
    shrink = next((factor for factor in (8, 4, 2) if min(image.width, image.height) // factor > THUMBNAIL_SIDE), 1)
    if shrink == 1:
        return image
    return _open(content, format, max_pixels=image.width * image.height, shrink=shrink)


def _orientation(image: pyvips.Image) -> int:
    """The EXIF orientation (1 to 8), or 0 when there is none or it is not
    one of those: a broken EXIF block should not lose the painting."""
    try:
        orientation = image.get("orientation") if image.get_typeof("orientation") else 0
    except pyvips.Error:
        return 0
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 0


def _working_copy(image: pyvips.Image) -> pyvips.Image:
    """The image as 8-bit sRGB, with an alpha channel when it has one."""
    if image.format not in ("uchar", "ushort"):
        image = _to_8bit(image)
    if image.interpretation not in ("srgb", "rgb16", "b-w", "grey16", "cmyk"):
        # A loader's guess (multiband, histogram ...): read the bands as they are.
        image = image.copy(interpretation="b-w" if image.bands <= 2 else "srgb")
    alpha = image.hasalpha()
    image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image.extract_band(0, n=4 if alpha else 3) if image.bands > (4 if alpha else 3) else image


def _to_8bit(image: pyvips.Image) -> pyvips.Image:
    """Scale 32-bit integer and float images to 0..255 from their own range
    (a plain cast would clip everything above 255 to white), unless they
    already lie within it. Needs the whole image twice, so it is read into
    memory first; such images are rare."""
    image = image.copy_memory()
    low, high = image.min(), image.max()
    if 0 <= low and high <= 255:
        return image.cast("uchar")
    scale = 255 / (high - low) if high > low else 0
    return ((image - low) * scale).cast("uchar")


def _cover_square(image: pyvips.Image) -> pyvips.Image:
    """Crop the centred square and resize it to THUMBNAIL_SIDE: Lanczos to
    shrink, nearest-neighbour to enlarge so pixel art stays crisp.

    With transparency, shrinking works on premultiplied alpha, so that
    transparent pixels lend no colour to their neighbours, in 8 bits as
    Pillow's RGBa does: resampling floats costs three times as much."""
    side = min(image.width, image.height)
    square = image.crop((image.width - side) // 2, (image.height - side) // 2, side, side)
    if side > THUMBNAIL_SIDE:
        scale = THUMBNAIL_SIDE / side
        if square.hasalpha():
            premultiplied = square.premultiply().cast("uchar")
            return premultiplied.resize(scale, kernel="lanczos3", gap=2.0).unpremultiply().cast("uchar")
        return square.resize(scale, kernel="lanczos3", gap=2.0)
    if side < THUMBNAIL_SIDE:
        return square.resize(THUMBNAIL_SIDE / side, kernel="nearest")
    return square


def _decoded(square: pyvips.Image, format: str, size: int) -> pyvips.Image:
    """Run the pipeline once, into memory: the one time the source's pixels
    are decoded, so this is where a truncated or corrupt image fails."""
    try:
        square = square.copy_memory()
    except pyvips.Error:
        raise ThumbnailError(f"The {format} image is truncated or corrupt ({size:,} bytes).") from None
    if square.bands == 4 and square.extract_band(3).min() == 255:
        square = square.extract_band(0, n=3)  # fully opaque: the alpha channel only costs bytes
    return square


def _encode_within(square: pyvips.Image, max_bytes: int) -> tuple[str, str, bytes]:
    """Returns (fallback, mime type, encoded bytes) of the first encoding in
    the ladder that fits in ``max_bytes``."""
    for fallback, mime_type, encode in _encodings(square):
        encoded = encode()
        if len(encoded) <= max_bytes:
            return fallback, mime_type, encoded
    raise ValueError(f"max_bytes={max_bytes} is too small for any 512x512 image.")


def _encodings(square: pyvips.Image):
    # The same lossless PNG twice: first at zlib level 2, a sixth cheaper to
    # make than level 6 and 7% larger on the corpus (1.70 against 2.02 ms,
    # 11.9 against 11.1 KB), then, only when that is over the limit, at level
    # 6, so that every painting level 6 keeps lossless stays lossless.
    yield "png", "image/png", lambda: _png(square, compression=FAST_COMPRESSION)
    yield "png", "image/png", lambda: _png(square)
    for bits in QUANTIZED_BITS:
        yield f"png-quantized-{2**bits}", "image/png", lambda bits=bits: _png(square, bits=bits)
    flat = square.flatten(background=JPEG_BACKGROUND) if square.hasalpha() else square
    for quality in JPEG_QUALITIES:
        yield f"jpeg-q{quality}", "image/jpeg", lambda quality=quality: flat.jpegsave_buffer(Q=quality, keep=KEEP_NOTHING)
    yield "png-mosaic-64", "image/png", lambda: _png(_mosaic(square), bits=8)
    yield "png-solid", "image/png", lambda: _png(_solid(square), bits=1)


def _png(image: pyvips.Image, *, bits: int = 0, compression: int = 6) -> bytes:
    # The "up" filter only: as fast as none, and as small as trying every
    # filter on each row (9.2 KB against 9.0 KB on the corpus, at a third of
    # the time), since enlarged pixel art repeats its rows.
    # The palette is searched with effort 4, not libvips' default 7: on a
    # 512x512 photograph or noise (what reaches this step: a plain PNG over
    # the lexicon's limit) 7 took 2.6 s and made a file 0.3% smaller than 4
    # does in 0.3 s. Pixel art of up to 256 colours keeps every colour
    # exactly from effort 4 up (below it, colours move by one level).
    if bits:
        return image.pngsave_buffer(palette=True, bitdepth=bits, Q=100, dither=0, effort=4, keep=KEEP_NOTHING)
    return image.pngsave_buffer(filter="up", compression=compression, keep=KEEP_NOTHING)


def _mosaic(image: pyvips.Image) -> pyvips.Image:
    factor = image.width // MOSAIC_SIDE
    return image.shrink(factor, factor).cast("uchar").resize(factor, kernel="nearest")


def _solid(image: pyvips.Image) -> pyvips.Image:
    mean = [round(image.extract_band(band).avg()) for band in range(image.bands)]
    return image.new_from_image(mean)


__all__ = ["Thumbnail", "ThumbnailError", "make_thumbnail"]
