"""Small MP4 files for the sample tapes, and the check that refuses a file
that is not one (``migrator.video.is_mp4``). Bytes in, bytes out: no
ffmpeg, no Django.

An MP4 is an ISO base media file: a sequence of boxes, each a 32-bit
big-endian size, a four-character type and its payload. ``mp4_bytes``
writes the three a player looks for first (``ftyp``, ``moov`` holding an
``mvhd``, then ``mdat``); its media data is noise, so it plays nothing, but
its structure is what ffmpeg writes for a tape.
"""

import random

from migrator.video import MP4_BRANDS, is_mp4  # noqa: F401 - the check the console refuses a tape's file with
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
