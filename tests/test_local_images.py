"""bin/local-images, the demo's and the benchmark's stand-in for object storage."""

import http.client
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images" / "media" / "@ann" / "painting"
    folder.mkdir(parents=True)
    (folder / "one.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "secret.txt").write_text("outside the root")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "local-images"), "--port", "0", "--root", str(tmp_path / "images")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = server.stdout.readline()
    port = int(line.rsplit(":", 1)[1].strip("/\n"))
    yield port
    server.terminate()
    _, errors = server.communicate(timeout=10)
    assert "Traceback" not in errors


def test_it_serves_files_and_keeps_the_connection_after_a_404(images):
    connection = http.client.HTTPConnection("127.0.0.1", images, timeout=5)
    answers, sockets = [], set()
    for method, path in [("HEAD", "/media/@ann/painting/one.zip"), ("GET", "/media/@ann/painting/one.png"), ("GET", "/nothing.png")]:
        connection.request(method, path)
        sockets.add(id(connection.sock))
        response = connection.getresponse()
        answers.append((response.status, response.read(), response.getheader("Content-Type")))
        assert connection.sock is not None, f"{method} {path} closed the connection"

    assert [status for status, _, _ in answers] == [404, 200, 404]
    assert answers[1][1].startswith(b"\x89PNG") and answers[1][2] == "image/png"
    assert len(sockets) == 1  # one connection for all three requests


def test_it_serves_nothing_outside_its_folder_and_lists_no_directories(images):
    connection = http.client.HTTPConnection("127.0.0.1", images, timeout=5)
    for path in ["/../secret.txt", "/media/%2e%2e/%2e%2e/secret.txt", "/media/"]:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 404, path
        assert b"outside the root" not in response.read()


def test_a_client_dropping_its_connection_is_no_error(images):
    """Workers close kept-alive connections abruptly (a reset); the server
    must not print a traceback for each (the fixture checks its stderr)."""
    for _ in range(3):
        client = socket.create_connection(("127.0.0.1", images), timeout=5)
        client.sendall(b"HEAD /media/@ann/painting/one.png HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.close()
    connection = http.client.HTTPConnection("127.0.0.1", images, timeout=5)
    connection.request("GET", "/media/@ann/painting/one.png")
    assert connection.getresponse().status == 200
