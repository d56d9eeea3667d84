"""The image storage: URLs of full paintings and recordings, and fetching them.

URLs are built only from the configured base URLs (USER_MEDIA_URL,
GUEST_MEDIA_URL) and a handle and slug that passed strict patterns, so no
painting can point a fetch at another host, scheme or path. Redirects are
followed by hand and only to those origins (plus IMAGE_REDIRECT_ORIGINS).

Every failure is an ImageError whose ``kind`` is an ErrorKind value and whose
``skip_reason``, when set, is the SkipReason the painting should be skipped
with.
"""

import os
import re
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings

from migrator.models import ErrorKind, SkipReason

MAX_REDIRECTS = 5
CHUNK_BYTES = 64 * 1024
USER_AGENT = "aesthetic-computer-migrator (painting thumbnails)"

HANDLE_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
# "2023.8.24.16.21.09.123": digits separated by single dots. No slashes, no
# leading dot and no "..", so a slug is always one harmless path segment.
SLUG_PATTERN = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6}){1,9}")
# "@jeffrey/painting/2023.8.24.16.21.09.123", as staff copy it from the site.
ADDRESS_PATTERN = re.compile(r"@(?P<handle>[^/]+)/painting/(?P<slug>[^/]+)")


class ImageError(Exception):
    """A painting's image could not be had.

    ``kind``: "permanent", "transient" or "rate_limited" (ErrorKind values);
    ``skip_reason``: a SkipReason value ("image_missing") or None;
    ``url``: the URL concerned, when there is one.
    """

    def __init__(self, message: str, kind: str, skip_reason: str | None = None, *, url: str = ""):
        super().__init__(message)
        self.message = message
        self.kind = str(kind)
        self.skip_reason = str(skip_reason) if skip_reason else None
        self.url = url

    @property
    def permanent(self) -> bool:
        return self.kind == ErrorKind.PERMANENT


def painting_image_url(*, handle: str | None, slug: str) -> str:
    """The full-size PNG of a user's painting (``handle``) or a guest's
    (``handle=None``). Raises a permanent ImageError for a handle or slug
    that does not match the patterns."""
    image_slug, _ = _split_slug(slug)
    return _media_url(handle, image_slug, "png")


def painting_recording_url(*, handle: str | None, slug: str) -> str:
    """The .zip recording of a painting; same rules as painting_image_url.
    A slug "image:recording" names the recording after the colon."""
    _, recording_slug = _split_slug(slug)
    return _media_url(handle, recording_slug, "zip")


def parse_painting_address(address: str) -> tuple[str | None, str]:
    """(handle, slug) from "@handle/painting/slug" or a bare guest slug.
    Raises a permanent ImageError for anything else."""
    address = address.strip()
    match = ADDRESS_PATTERN.fullmatch(address)
    if match:
        handle, slug = _valid_handle(match["handle"]), match["slug"]
    elif address.startswith("@") or "/" in address:
        raise _invalid(f"{address!r} is not a valid painting address: expected @handle/painting/slug or a guest slug.")
    else:
        handle, slug = None, address
    _split_slug(slug)
    return handle, slug


def _media_url(handle: str | None, slug: str, extension: str) -> str:
    if handle is None:
        return f"{settings.GUEST_MEDIA_URL.rstrip('/')}/{slug}.{extension}"
    handle = _valid_handle(handle)
    return f"{settings.USER_MEDIA_URL.rstrip('/')}/@{handle}/painting/{slug}.{extension}"


def _valid_handle(handle: str) -> str:
    bare = handle[1:] if handle.startswith("@") else handle
    if not HANDLE_PATTERN.fullmatch(bare):
        raise _invalid(f"{handle!r} is not a valid aesthetic.computer handle.")
    return bare


def _split_slug(slug: str) -> tuple[str, str]:
    """(image slug, recording slug): the same unless the slug is "a:b"."""
    parts = slug.split(":")
    if len(parts) > 2 or not all(SLUG_PATTERN.fullmatch(part) for part in parts):
        raise _invalid(f"{slug!r} is not a valid painting slug.")
    return parts[0], parts[-1]


def _invalid(message: str) -> ImageError:
    return ImageError(message, ErrorKind.PERMANENT)


# --- Fetching ----------------------------------------------------------------

_sessions = threading.local()


def _session() -> requests.Session:
    """One pooled session per thread, recreated in a forked worker process
    (sockets inherited across fork must not be shared)."""
    if getattr(_sessions, "pid", None) != os.getpid():
        session = requests.Session()
        # No proxies, .netrc credentials or CA overrides from the environment:
        # a fetch goes exactly where the settings say.
        session.trust_env = False
        session.headers.update({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        _sessions.session, _sessions.pid = session, os.getpid()
    return _sessions.session


def fetch_image(url: str, *, max_bytes: int | None = None, too_big: str | None = None) -> bytes:
    """The body of ``url``, which must be on a configured origin.

    Follows up to MAX_REDIRECTS redirects within the allowed origins. Gives up
    (failed, or skipped for the SkipReason ``too_big``)
    past ``max_bytes`` (default IMAGE_FETCH_MAX_BYTES) or
    IMAGE_FETCH_TOTAL_TIMEOUT seconds (a stalled read can add at most one
    IMAGE_FETCH_READ_TIMEOUT). Raises ImageError: 404/410 are permanent with
    skip_reason "image_missing"; 5xx, 408, timeouts and connection errors are
    transient; 429 is rate_limited; anything else is permanent.
    """
    max_bytes = settings.IMAGE_FETCH_MAX_BYTES if max_bytes is None else max_bytes
    deadline = time.monotonic() + settings.IMAGE_FETCH_TOTAL_TIMEOUT
    origins = _allowed_origins()
    for _ in range(MAX_REDIRECTS + 1):
        url = _vetted(url, origins)
        response = _get(url, deadline)
        with response:
            if response.is_redirect:
                url = _redirect_target(url, response.headers["Location"])
                continue
            _check_status(response, url)
            return _read_body(response, url, max_bytes, deadline, too_big)
    raise ImageError(f"More than {MAX_REDIRECTS} redirects fetching {url}.", ErrorKind.PERMANENT, url=url)


def resource_exists(url: str) -> bool:
    """Whether ``url`` (on a configured origin) answers a HEAD with 200.
    Recordings are optional: a 404 means none. Other failures raise
    ImageError as fetch_image does."""
    url = _vetted(url, _allowed_origins())
    timeout = (settings.IMAGE_FETCH_CONNECT_TIMEOUT, settings.IMAGE_FETCH_READ_TIMEOUT)
    try:
        response = _session().head(url, allow_redirects=False, timeout=timeout)
    except requests.RequestException as error:
        raise ImageError(f"Could not look up {url}: {error}", ErrorKind.TRANSIENT, url=url) from error
    if response.status_code in (404, 410):
        return False
    if response.status_code in (405, 501):  # storage that cannot answer HEAD: none known
        return False
    if response.is_redirect:  # storage that redirects: the object is there
        return True
    _check_status(response, url)
    return True


def _redirect_target(url: str, location: str) -> str:
    """The absolute URL a redirect points at. Refuses a Location whose text
    parsers could read differently (backslashes, whitespace, control or
    non-ASCII characters), whatever origin it seems to name."""
    malformed = any(char in "\\ " or not 32 < ord(char) < 127 for char in location)
    if malformed:
        raise ImageError(f"Refusing a redirect from {url}: its Location is malformed.", ErrorKind.PERMANENT, url=url)
    return urljoin(url, location)


def _vetted(url: str, origins: set) -> str:
    """``url`` as requests will send it, if that is on an allowed origin.

    The origin is read from the prepared request's URL with urllib3's own
    parser (the one that opens the connection), so a URL that one parser
    reads as an allowed host and another as a different one cannot slip
    through; a URL with credentials (userinfo) is refused outright.
    Raises a permanent ImageError."""
    refused = ImageError(f"Refusing to fetch {url}: not on a configured image host.", ErrorKind.PERMANENT, url=url)
    try:
        prepared = requests.Request("GET", url).prepare().url
        parts = urllib3.util.parse_url(prepared)
    except (requests.RequestException, urllib3.exceptions.LocationParseError, ValueError, UnicodeError):
        raise refused from None
    if not prepared.isascii() or parts.auth or "\\" in prepared or not parts.host:
        raise refused
    scheme = (parts.scheme or "").lower()
    origin = (scheme, parts.host.lower(), parts.port or {"http": 80, "https": 443}.get(scheme))
    if origin not in origins:
        raise refused
    return prepared


def _allowed_origins() -> set[tuple[str, str, int | None]]:
    bases = [settings.USER_MEDIA_URL, settings.GUEST_MEDIA_URL, settings.TAPE_MEDIA_URL, *settings.IMAGE_REDIRECT_ORIGINS]
    return {_origin(base) for base in bases}


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # an unparseable port
        return ("", "", None)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def _get(url: str, deadline: float) -> requests.Response:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(url)
    timeout = (
        min(settings.IMAGE_FETCH_CONNECT_TIMEOUT, remaining),
        min(settings.IMAGE_FETCH_READ_TIMEOUT, remaining),
    )
    try:
        return _session().get(url, stream=True, allow_redirects=False, timeout=timeout)
    except requests.Timeout as error:
        raise ImageError(f"Timed out fetching {url}: {error}", ErrorKind.TRANSIENT, url=url) from error
    except requests.ConnectionError as error:
        raise ImageError(f"Could not connect to fetch {url}: {error}", ErrorKind.TRANSIENT, url=url) from error
    except requests.RequestException as error:
        raise ImageError(f"Could not fetch {url}: {error}", ErrorKind.PERMANENT, url=url) from error
    except UnicodeError as error:  # requests decoding a redirect's non-UTF-8 Location
        raise ImageError(f"Refusing a redirect from {url}: its Location is malformed.", ErrorKind.PERMANENT, url=url) from error


def _check_status(response: requests.Response, url: str) -> None:
    status = response.status_code
    if status == 200:
        return
    described = f"{url} answered {status} {response.reason or ''}".strip()
    if status in (404, 410):
        raise ImageError(f"Image missing: {described}.", ErrorKind.PERMANENT, SkipReason.IMAGE_MISSING, url=url)
    if status == 429:
        raise ImageError(f"Rate limited: {described}.", ErrorKind.RATE_LIMITED, url=url)
    if status >= 500 or status == 408:
        raise ImageError(f"Image server error: {described}.", ErrorKind.TRANSIENT, url=url)
    raise ImageError(f"Unexpected answer: {described}.", ErrorKind.PERMANENT, url=url)


def _read_body(response: requests.Response, url: str, max_bytes: int, deadline: float, too_big: str | None = None) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(url, max_bytes, too_big, size=int(declared))
    body = bytearray()
    try:
        # read1 returns after one socket read, so a server dripping bytes
        # cannot hold a read past the deadline for longer than one read timeout.
        while chunk := response.raw.read1(CHUNK_BYTES):
            body += chunk
            if len(body) > max_bytes:
                raise _too_big(url, max_bytes, too_big)
            if time.monotonic() > deadline:
                raise _timed_out(url)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
        raise ImageError(f"The connection broke while reading {url}: {error}", ErrorKind.TRANSIENT, url=url) from error
    return bytes(body)


def _too_big(url: str, max_bytes: int, reason: str | None = None, *, size: int | None = None) -> ImageError:
    """Past the cap: failed (IMAGE_FETCH_MAX_BYTES), or skipped for
    ``reason`` (a SkipReason) when the caller says what the cap is."""
    if reason is None:
        return ImageError(f"{url} is larger than the {max_bytes:,}-byte cap (IMAGE_FETCH_MAX_BYTES).", ErrorKind.PERMANENT, url=url)
    how_big = f"{size:,} bytes" if size is not None else f"more than {max_bytes:,} bytes"
    return ImageError(f"{url} is {how_big}; at most {max_bytes:,} may be uploaded.", ErrorKind.PERMANENT, reason, url=url)


def _timed_out(url: str) -> ImageError:
    return ImageError(
        f"Fetching {url} took longer than {settings.IMAGE_FETCH_TOTAL_TIMEOUT:g} s (IMAGE_FETCH_TOTAL_TIMEOUT).",
        ErrorKind.TRANSIENT,
        url=url,
    )
