"""Small MP4 files for the sample tapes, and the check that refuses a file
that is not one. Bytes in, bytes out: no ffmpeg, no Django.

An MP4 is an ISO base media file: a sequence of boxes, each a 32-bit
big-endian size, a four-character type and its payload. ``mp4_bytes``
writes the three a player looks for first (``ftyp``, ``moov`` holding an
``mvhd``, then ``mdat``); its media data is noise, so it plays nothing, but
its structure is what ffmpeg writes for a tape.
"""

import random

# ffmpeg's MP4 muxer writes major brand isom; other MP4 writers use these.
# Not "qt  " (QuickTime, video/quicktime) nor "M4A " (audio).
MP4_BRANDS = frozenset({b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V "})
_FTYP_PAYLOAD = b"isom" + (512).to_bytes(4, "big") + b"isom" + b"iso2" + b"avc1" + b"mp41"
_MVHD_PAYLOAD_BYTES = 100
SMALLEST_MP4 = (8 + len(_FTYP_PAYLOAD)) + (8 + 8 + _MVHD_PAYLOAD_BYTES) + 8


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _mvhd(duration_ms: int) -> bytes:
    """A version-0 movie header: timescale 1000, the duration, normal rate
    and volume, the identity matrix, next track 1."""
    identity = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    payload = (
        bytes(4)  # version 0, no flags
        + bytes(8)  # created, modified: 1904-01-01
        + (1000).to_bytes(4, "big")
        + duration_ms.to_bytes(4, "big")
        + (0x10000).to_bytes(4, "big")  # rate 1.0
        + (0x100).to_bytes(2, "big")  # volume 1.0
        + bytes(10)
        + b"".join(value.to_bytes(4, "big") for value in identity)
        + bytes(24)
        + (1).to_bytes(4, "big")
    )
    assert len(payload) == _MVHD_PAYLOAD_BYTES
    return _box(b"mvhd", payload)


def mp4_bytes(seed: int, size: int) -> bytes:
    """An MP4 of exactly ``size`` bytes, the same for the same seed.
    Raises ValueError when ``size`` is below SMALLEST_MP4."""
    if size < SMALLEST_MP4:
        raise ValueError(f"An MP4 takes at least {SMALLEST_MP4} bytes, not {size}.")
    rng = random.Random(seed)
    head = _box(b"ftyp", _FTYP_PAYLOAD) + _box(b"moov", _mvhd(rng.randint(1000, 8000)))
    return head + _box(b"mdat", rng.randbytes(size - len(head) - 8))


def is_mp4(data: bytes) -> bool:
    """Whether ``data`` starts as an MP4 does: an ``ftyp`` box first, whole
    within ``data``, whose major brand is an MP4 one."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    # The payload is the major brand, a minor version and whole brands.
    if size < 16 or size > len(data) or (size - 16) % 4:
        return False
    return data[8:12] in MP4_BRANDS
