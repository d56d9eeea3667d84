"""A tape's video: its MP4, fetched from the media storage, and the check
that refuses a file that is not one. Bytes in, bytes out."""

from dataclasses import dataclass

# ffmpeg's MP4 muxer writes major brand isom; other MP4 writers use these.
# Not "qt  " (QuickTime, video/quicktime) nor "M4A " (audio).
MP4_BRANDS = frozenset({b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V "})
MP4_MIME = "video/mp4"


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


@dataclass(frozen=True)
class Video:
    """A blob the engine uploads, as a painting's Thumbnail is one."""

    content: bytes
    mime_type: str = MP4_MIME
    fallback: str = "mp4"  # how it was made: fetched as is

    @property
    def size(self) -> int:
        return len(self.content)
