"""Image URLs and fetching, against a real HTTP server on 127.0.0.1; and the
thumbnail command end to end against the same server."""

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from migrator.images import (
    ImageError,
    fetch_image,
    painting_image_url,
    painting_recording_url,
    parse_painting_address,
    resource_exists,
)

SLUG = "2023.8.24.16.21.09.123"


class ImageServer:
    """A real HTTP server in a thread. ``routes`` maps a path to a function
    that answers through the request handler."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                answer = server.routes.get(self.path)
                if answer is None:
                    self.send_error(404)
                else:
                    answer(self)

            do_HEAD = do_GET  # a route answers a HEAD with its headers alone

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def serve(self, path, body=b"", *, status=200, content_type="image/png", headers=()):
        def answer(handler):
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(body)

        self.routes[path] = answer

    def redirect(self, path, location, status=302):
        self.serve(path, status=status, headers=[("Location", location)])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def image_server(settings):
    with ImageServer() as server:
        settings.USER_MEDIA_URL = f"{server.url}/media"
        settings.GUEST_MEDIA_URL = f"{server.url}/guest"
        settings.IMAGE_REDIRECT_ORIGINS = []
        settings.IMAGE_FETCH_CONNECT_TIMEOUT = 2
        settings.IMAGE_FETCH_READ_TIMEOUT = 2
        settings.IMAGE_FETCH_TOTAL_TIMEOUT = 5
        yield server


@pytest.fixture
def other_server():
    with ImageServer() as server:
        yield server


def png_bytes(size=(64, 48), colour=(200, 30, 90, 255), format="PNG"):
    image = Image.new("RGBA" if format == "PNG" else "RGB", size, colour[: 4 if format == "PNG" else 3])
    buffer = io.BytesIO()
    image.save(buffer, format)
    return buffer.getvalue()


# --- URLs --------------------------------------------------------------------


def test_it_builds_user_painting_urls_from_the_configured_base(settings):
    settings.USER_MEDIA_URL = "https://aesthetic.computer/media/"
    assert painting_image_url(handle="jeffrey", slug=SLUG) == f"https://aesthetic.computer/media/@jeffrey/painting/{SLUG}.png"
    assert painting_image_url(handle="@jeffrey", slug=SLUG) == f"https://aesthetic.computer/media/@jeffrey/painting/{SLUG}.png"
    assert painting_recording_url(handle="jeffrey", slug=SLUG) == f"https://aesthetic.computer/media/@jeffrey/painting/{SLUG}.zip"


def test_it_splits_a_guest_slug_into_image_and_recording(settings):
    settings.GUEST_MEDIA_URL = "https://art.aesthetic.computer"
    slug = "2023.1.2.3.4.5.678:2023.1.2.3.4.9.001"
    assert painting_image_url(handle=None, slug=slug) == "https://art.aesthetic.computer/2023.1.2.3.4.5.678.png"
    assert painting_recording_url(handle=None, slug=slug) == "https://art.aesthetic.computer/2023.1.2.3.4.9.001.zip"
    assert painting_image_url(handle=None, slug=SLUG) == f"https://art.aesthetic.computer/{SLUG}.png"


@pytest.mark.parametrize(
    "handle",
    ["../admin", "jeff/rey", "Jeffrey", "jeffrey?x=1", "jeffrey#", "", "@", ".hidden", "a b", "evil.com:80", "%2e%2e", "j\n"],
)
def test_it_refuses_a_handle_that_could_change_the_url(handle):
    with pytest.raises(ImageError) as caught:
        painting_image_url(handle=handle, slug=SLUG)
    assert caught.value.kind == "permanent"
    assert "handle" in caught.value.message


@pytest.mark.parametrize(
    "slug",
    ["../../etc/passwd", "2023.8.24/../x", "..", ".2023.1", "2023..1", "2023.1.", "2023", "a:b", "1.2:3.4:5.6",
     "//evil.com/x", "https://evil.com/1.2", "1.2?x", "1.2#", "1.2%2f3", "", " 1.2", "1.2\n"],
)
def test_it_refuses_a_slug_that_could_change_the_url(slug):
    with pytest.raises(ImageError) as caught:
        painting_image_url(handle=None, slug=slug)
    assert caught.value.kind == "permanent"


def test_it_reads_a_painting_address_as_staff_type_it():
    assert parse_painting_address(f"@jeffrey/painting/{SLUG}") == ("jeffrey", SLUG)
    assert parse_painting_address(SLUG) == (None, SLUG)
    assert parse_painting_address("1.2.3:4.5.6") == (None, "1.2.3:4.5.6")
    for address in ["@jeffrey", f"@jeffrey/{SLUG}", f"@../painting/{SLUG}", f"@jeffrey/painting/{SLUG}/x", "x/y"]:
        with pytest.raises(ImageError):
            parse_painting_address(address)


# --- Fetching ----------------------------------------------------------------


def test_it_fetches_an_image(image_server):
    body = png_bytes()
    image_server.serve(f"/media/@jeffrey/painting/{SLUG}.png", body)
    assert fetch_image(painting_image_url(handle="jeffrey", slug=SLUG)) == body


@pytest.mark.parametrize("status", [404, 410])
def test_a_missing_image_is_permanent_and_skips_the_painting(image_server, status):
    image_server.serve(f"/guest/{SLUG}.png", b"gone", status=status, content_type="text/plain")
    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))
    assert (caught.value.kind, caught.value.skip_reason) == ("permanent", "image_missing")
    assert str(status) in caught.value.message


@pytest.mark.parametrize("status, kind", [(500, "transient"), (503, "transient"), (429, "rate_limited"), (403, "permanent"), (400, "permanent")])
def test_it_classifies_server_answers(image_server, status, kind):
    image_server.serve(f"/guest/{SLUG}.png", b"no", status=status, content_type="text/plain")
    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))
    assert caught.value.kind == kind
    assert caught.value.skip_reason is None


def test_a_slow_server_times_out_as_transient(image_server, settings):
    settings.IMAGE_FETCH_READ_TIMEOUT = 0.3

    def slow(handler):
        time.sleep(1.5)
        handler.send_response(200)
        handler.end_headers()

    image_server.routes[f"/guest/{SLUG}.png"] = slow
    started = time.monotonic()
    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))
    assert caught.value.kind == "transient"
    assert time.monotonic() - started < 1.2


def test_a_dripping_server_is_cut_off_at_the_total_time_limit(image_server, settings):
    settings.IMAGE_FETCH_READ_TIMEOUT = 1
    settings.IMAGE_FETCH_TOTAL_TIMEOUT = 0.8

    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    image_server.routes[f"/guest/{SLUG}.png"] = drip
    started = time.monotonic()
    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))
    assert caught.value.kind == "transient"
    assert "IMAGE_FETCH_TOTAL_TIMEOUT" in caught.value.message
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "ask",
    [lambda: fetch_image(painting_image_url(handle=None, slug=SLUG)), lambda: resource_exists(painting_recording_url(handle=None, slug=SLUG))],
    ids=["image", "recording"],
)
def test_nothing_listening_is_transient(settings, ask):
    with ImageServer() as server:
        url = server.url
    settings.GUEST_MEDIA_URL = f"{url}/guest"
    with pytest.raises(ImageError) as caught:
        ask()
    assert caught.value.kind == "transient"


def test_it_stops_reading_past_the_byte_cap(image_server, settings):
    settings.IMAGE_FETCH_MAX_BYTES = 100_000

    def unannounced(handler):  # no Content-Length: the cap must hold while streaming
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    image_server.routes[f"/guest/{SLUG}.png"] = unannounced
    image_server.serve("/guest/1.2.png", b"\0" * 100_001)
    for slug in (SLUG, "1.2"):
        with pytest.raises(ImageError) as caught:
            fetch_image(painting_image_url(handle=None, slug=slug))
        assert caught.value.kind == "permanent"
        assert "100,000-byte cap" in caught.value.message


def test_it_follows_a_redirect_within_the_host(image_server):
    body = png_bytes()
    image_server.redirect(f"/media/@jeffrey/painting/{SLUG}.png", f"/guest/{SLUG}.png", status=301)
    image_server.serve(f"/guest/{SLUG}.png", body)
    assert fetch_image(painting_image_url(handle="jeffrey", slug=SLUG)) == body


def test_it_refuses_a_redirect_to_another_host(image_server, other_server):
    other_server.serve(f"/{SLUG}.png", png_bytes())
    image_server.redirect(f"/guest/{SLUG}.png", f"{other_server.url}/{SLUG}.png")
    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))
    assert caught.value.kind == "permanent"
    assert "not on a configured image host" in caught.value.message
    assert other_server.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{other}\\@127.0.0.1:{image}/x.png",  # urlsplit reads host {image}; requests connects to {other}
        "http://127.0.0.1:{image}@127.0.0.1:{other}/x.png",  # userinfo
        "http://user:pass@127.0.0.1:{image}/guest/x.png",  # userinfo on the allowed host itself
        "http://127.0.0.1:{other}/\u00e9.png",  # non-ASCII
        "http://127.0.0.1:{image} /x.png",  # whitespace
        "http://127.0.0.1\t:{other}/x.png",
    ],
)
def test_it_refuses_redirects_that_parsers_read_differently(image_server, other_server, location):
    """A real second server stands where a smuggled redirect would lead: it
    must see no request at all."""
    image_port, other_port = image_server.url.rsplit(":", 1)[1], other_server.url.rsplit(":", 1)[1]
    other_server.serve("/x.png", png_bytes())
    image_server.redirect(f"/guest/{SLUG}.png", location.format(image=image_port, other=other_port))

    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))

    assert caught.value.kind == "permanent"
    assert other_server.requests == []
    assert image_server.requests == [f"/guest/{SLUG}.png"]


def test_a_reply_that_is_not_an_image_is_described_not_quoted(image_server):
    from migrator.thumbnails import ThumbnailError, make_thumbnail

    secretish = b"Authorization: Bearer eyJsecret-token-value"
    with pytest.raises(ThumbnailError) as caught:
        make_thumbnail(secretish)
    assert caught.value.message == f"Not an image (text, {len(secretish)} bytes)."
    assert "Bearer" not in caught.value.message and "eyJ" not in caught.value.message


def test_it_follows_a_redirect_to_an_origin_configured_for_redirects(image_server, other_server, settings):
    body = png_bytes()
    settings.IMAGE_REDIRECT_ORIGINS = [other_server.url]
    other_server.serve(f"/bucket/{SLUG}.png", body)
    image_server.redirect(f"/guest/{SLUG}.png", f"{other_server.url}/bucket/{SLUG}.png")
    assert fetch_image(painting_image_url(handle=None, slug=SLUG)) == body


def test_it_gives_up_on_a_redirect_loop(image_server):
    image_server.redirect(f"/guest/{SLUG}.png", f"/guest/{SLUG}.png")
    with pytest.raises(ImageError) as caught:
        fetch_image(painting_image_url(handle=None, slug=SLUG))
    assert caught.value.kind == "permanent"
    assert "redirects" in caught.value.message
    assert len(image_server.requests) == 6


def test_it_refuses_a_url_off_the_configured_hosts(image_server, other_server):
    with pytest.raises(ImageError) as caught:
        fetch_image(f"{other_server.url}/x.png")
    assert caught.value.kind == "permanent"
    with pytest.raises(ImageError):
        fetch_image("file:///etc/passwd")
    assert other_server.requests == []


def test_a_recording_is_looked_up_with_a_head_request(image_server):
    recording = painting_recording_url(handle="jeffrey", slug=SLUG)
    image_server.serve(f"/media/@jeffrey/painting/{SLUG}.zip", b"PK" + b"\0" * 5000, content_type="application/zip")
    assert resource_exists(recording) is True
    assert resource_exists(painting_recording_url(handle="jeffrey", slug="1.2")) is False  # 404: no recording
    image_server.serve(f"/media/@jeffrey/painting/{SLUG}.png", png_bytes())
    assert fetch_image(painting_image_url(handle="jeffrey", slug=SLUG)) == png_bytes()  # the kept connection still answers
    assert image_server.requests == [f"/media/@jeffrey/painting/{SLUG}.zip", "/media/@jeffrey/painting/1.2.zip", f"/media/@jeffrey/painting/{SLUG}.png"]


@pytest.mark.parametrize("status, exists", [(410, False), (405, False), (501, False), (302, True), (307, True)])
def test_a_recording_lookup_reads_what_storage_answers(image_server, status, exists):
    image_server.serve(f"/guest/{SLUG}.zip", status=status, headers=[("Location", "/elsewhere.zip")] if status in (302, 307) else ())
    assert resource_exists(painting_recording_url(handle=None, slug=SLUG)) is exists
    assert image_server.requests == [f"/guest/{SLUG}.zip"]  # a redirect is the object's, not followed


@pytest.mark.parametrize("status, kind", [(500, "transient"), (429, "rate_limited"), (403, "permanent")])
def test_a_failed_recording_lookup_is_an_image_error(image_server, status, kind):
    image_server.serve(f"/guest/{SLUG}.zip", status=status)
    with pytest.raises(ImageError) as caught:
        resource_exists(painting_recording_url(handle=None, slug=SLUG))
    assert caught.value.kind == kind


def test_a_recording_lookup_off_the_configured_hosts_is_refused(image_server, other_server):
    with pytest.raises(ImageError) as caught:
        resource_exists(f"{other_server.url}/{SLUG}.zip")
    assert caught.value.kind == "permanent" and "not on a configured image host" in caught.value.message
    assert other_server.requests == []


# --- The thumbnail command ---------------------------------------------------


def run_thumbnail(*args):
    out = io.StringIO()
    call_command("thumbnail", *args, stdout=out)
    return out.getvalue()


def test_the_command_writes_a_thumbnail_of_a_user_painting(image_server, tmp_path):
    image_server.serve(f"/media/@jeffrey/painting/{SLUG}.png", png_bytes((1920, 1080)))
    output = tmp_path / "thumbnail.png"
    printed = run_thumbnail("--slug", f"@jeffrey/painting/{SLUG}", "-o", str(output))
    with Image.open(output) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("PNG", (512, 512))
    assert "512x512" in printed and "image/png" in printed and "fallback png" in printed
    assert f"{output.stat().st_size:,} bytes" in printed


def test_the_command_takes_a_bare_guest_slug_and_a_jpeg_named_png(image_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image_server.serve(f"/guest/{SLUG}.png", png_bytes((300, 300), format="JPEG"))
    printed = run_thumbnail("--slug", SLUG)
    with Image.open(Path(tmp_path, "thumbnail.png")) as thumbnail:
        assert thumbnail.size == (512, 512)
    assert "from a 300x300 JPEG" in printed


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "image/png", "HTML page"),
        (b"", "image/png", "empty"),
        (png_bytes((100, 100))[:-60], "image/png", "truncated"),
    ],
)
def test_the_command_explains_a_bad_image(image_server, tmp_path, body, content_type, message):
    image_server.serve(f"/guest/{SLUG}.png", body, content_type=content_type)
    with pytest.raises(CommandError, match=message):
        run_thumbnail("--slug", SLUG, "-o", str(tmp_path / "t.png"))
    assert not (tmp_path / "t.png").exists()


def test_the_command_explains_a_missing_image(image_server, tmp_path):
    with pytest.raises(CommandError, match="Image missing.*404"):
        run_thumbnail("--slug", f"@jeffrey/painting/{SLUG}", "-o", str(tmp_path / "t.png"))


def test_the_command_refuses_a_malformed_address(image_server):
    with pytest.raises(CommandError, match="not a valid"):
        run_thumbnail("--slug", "@jeffrey/painting/../../secret")
    assert image_server.requests == []
