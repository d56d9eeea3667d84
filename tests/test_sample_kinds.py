"""The sample tapes' MP4s (migrator.samples.mp4): whole boxes, and what is
not an MP4 refused."""

import pytest

from migrator.samples.mp4 import SMALLEST_MP4, is_mp4, mp4_bytes


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    found, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        found.append((data[offset + 4 : offset + 8], size))
        offset += size
    assert offset == len(data)
    return found


def test_an_mp4_is_made_of_whole_boxes_of_the_size_asked():
    content = mp4_bytes(seed=3, size=5000)
    assert len(content) == 5000 and content == mp4_bytes(seed=3, size=5000) != mp4_bytes(seed=4, size=5000)
    [(ftyp, ftyp_size), (moov, moov_size), (mdat, _)] = boxes(content)
    assert (ftyp, moov, mdat) == (b"ftyp", b"moov", b"mdat")
    assert content[ftyp_size + 12 : ftyp_size + 16] == b"mvhd" and moov_size == 8 + 108  # moov holds one movie header
    assert len(mp4_bytes(seed=1, size=SMALLEST_MP4)) == SMALLEST_MP4
    with pytest.raises(ValueError):
        mp4_bytes(seed=1, size=SMALLEST_MP4 - 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"PK\x03\x04" + bytes(100),
        b"",
        mp4_bytes(1, 1000)[:10],  # cut short
        (20).to_bytes(4, "big") + b"ftypqt  " + bytes(4) + b"qt  ",  # QuickTime, not MP4
        (400).to_bytes(4, "big") + b"ftypisom" + bytes(8),  # an ftyp longer than the file
    ],
    ids=["png", "zip", "empty", "truncated", "quicktime", "ftyp-overruns"],
)
def test_what_is_not_an_mp4_is_refused(data):
    assert not is_mp4(data)

