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

import urllib3
from django.conf import settings

from migrator.models import ErrorKind, SkipReason
from migrator.tls import tls_context

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

# A redirect answer, as requests and browsers read one: any of these with a Location.
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

_pools = threading.local()


def _pool() -> urllib3.PoolManager:
    """One keep-alive connection pool per thread, recreated in a forked
    worker process (sockets inherited across fork must not be shared).

    urllib3 itself, the transport under requests: a painting costs two
    requests here (its image and the look for its recording), and requests'
    own layer (cookies, hooks, its Request and Response models) was half
    their CPU. Nothing from the environment (proxies, .netrc, CA overrides)
    applies: a fetch goes exactly where the settings say, never retried or
    redirected but by the code below."""
    if getattr(_pools, "pid", None) != os.getpid():
        _pools.manager = urllib3.PoolManager(
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            retries=False,
            ssl_context=tls_context(),
        )
        _pools.pid = os.getpid()
    return _pools.manager


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
        read = False
        try:
            if _is_redirect(response):
                url = _redirect_target(url, response.headers["Location"])
                continue
            _check_status(response, url)
            body = _read_body(response, url, max_bytes, deadline, too_big)
            read = True
            return body
        finally:
            # A body read to its end leaves the connection for the next
            # request; any other (a redirect's, an error page, one cut
            # short) is closed with whatever is left unread.
            if read:
                response.release_conn()
            else:
                response.close()
    raise ImageError(f"More than {MAX_REDIRECTS} redirects fetching {url}.", ErrorKind.PERMANENT, url=url)


def resource_exists(url: str) -> bool:
    """Whether ``url`` (on a configured origin) answers a HEAD with 200.
    Recordings are optional: a 404 means none. Other failures raise
    ImageError as fetch_image does."""
    url = _vetted(url, _allowed_origins())
    timeout = urllib3.Timeout(connect=settings.IMAGE_FETCH_CONNECT_TIMEOUT, read=settings.IMAGE_FETCH_READ_TIMEOUT)
    try:
        response = _pool().request("HEAD", url, redirect=False, timeout=timeout)  # no body: read, and the connection kept
    except urllib3.exceptions.HTTPError as error:
        raise ImageError(f"Could not look up {url}: {error}", _failure_kind(error), url=url) from error
    if response.status in (404, 410):
        return False
    if response.status in (405, 501):  # storage that cannot answer HEAD: none known
        return False
    if _is_redirect(response):  # storage that redirects: the object is there
        return True
    _check_status(response, url)
    return True


def _is_redirect(response: urllib3.BaseHTTPResponse) -> bool:
    return response.status in REDIRECT_STATUSES and "Location" in response.headers


def _redirect_target(url: str, location: str) -> str:
    """The absolute URL a redirect points at. Refuses a Location whose text
    parsers could read differently (backslashes, whitespace, control or
    non-ASCII characters), whatever origin it seems to name."""
    malformed = any(char in "\\ " or not 32 < ord(char) < 127 for char in location)
    if malformed:
        raise ImageError(f"Refusing a redirect from {url}: its Location is malformed.", ErrorKind.PERMANENT, url=url)
    return urljoin(url, location)


def _vetted(url: str, origins: set) -> str:
    """``url`` as it will be sent, if that is on an allowed origin.

    The origin is read with urllib3's own parser, the one that opens the
    connection, from the very text it is then given, so a URL that one
    parser reads as an allowed host and another as a different one cannot
    slip through; a URL with credentials (userinfo) or anything but ASCII
    is refused outright. Raises a permanent ImageError."""
    refused = ImageError(f"Refusing to fetch {url}: not on a configured image host.", ErrorKind.PERMANENT, url=url)
    if not url.isascii() or "\\" in url:
        raise refused
    try:
        parts = urllib3.util.parse_url(url)
    except (urllib3.exceptions.LocationParseError, ValueError, UnicodeError):
        raise refused from None
    if parts.auth or not parts.host:
        raise refused
    scheme = (parts.scheme or "").lower()
    origin = (scheme, parts.host.lower(), parts.port or {"http": 80, "https": 443}.get(scheme))
    if origin not in origins:
        raise refused
    return parts.url


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


def _get(url: str, deadline: float) -> urllib3.BaseHTTPResponse:
    """The answer to a GET of ``url``, its body not read yet."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(url)
    timeout = urllib3.Timeout(
        connect=min(settings.IMAGE_FETCH_CONNECT_TIMEOUT, remaining),
        read=min(settings.IMAGE_FETCH_READ_TIMEOUT, remaining),
    )
    try:
        return _pool().request("GET", url, redirect=False, timeout=timeout, preload_content=False, decode_content=False)
    except urllib3.exceptions.NewConnectionError as error:  # a TimeoutError to urllib3, but nothing waited
        raise ImageError(f"Could not connect to fetch {url}: {error}", ErrorKind.TRANSIENT, url=url) from error
    except urllib3.exceptions.TimeoutError as error:
        raise ImageError(f"Timed out fetching {url}: {error}", ErrorKind.TRANSIENT, url=url) from error
    except urllib3.exceptions.HTTPError as error:
        raise ImageError(f"Could not fetch {url}: {error}", _failure_kind(error), url=url) from error


def _failure_kind(error: urllib3.exceptions.HTTPError) -> str:
    """A request that got no answer: worth retrying, unless the URL itself
    could never be requested."""
    if isinstance(error, urllib3.exceptions.LocationValueError):
        return ErrorKind.PERMANENT
    return ErrorKind.TRANSIENT


def _check_status(response: urllib3.BaseHTTPResponse, url: str) -> None:
    status = response.status
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


def _read_body(response: urllib3.BaseHTTPResponse, url: str, max_bytes: int, deadline: float, too_big: str | None = None) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(url, max_bytes, too_big, size=int(declared))
    body = bytearray()
    try:
        # read1 returns after one socket read, so a server dripping bytes
        # cannot hold a read past the deadline for longer than one read timeout.
        while chunk := response.read1(CHUNK_BYTES):
            body += chunk
            if len(body) > max_bytes:
                raise _too_big(url, max_bytes, too_big)
            if time.monotonic() > deadline:
                raise _timed_out(url)
    except (urllib3.exceptions.HTTPError, OSError) as error:
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
