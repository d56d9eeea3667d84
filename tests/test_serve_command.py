"""``manage.py serve`` in-process, for the quick loop: what it hands
gunicorn and that it collects the static files first. The one thing mocked
is ``os.execv``, which would replace the test process with gunicorn; the
real server, started by the real command, is tested in test_serving.py
(slow)."""

import io

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from migrator.management.commands import serve


@pytest.fixture
def execs(monkeypatch, tmp_path):
    calls = []
    monkeypatch.chdir(tmp_path)  # the command changes folder: put it back afterwards
    monkeypatch.setattr(serve.os, "execv", lambda path, arguments: calls.append((path, arguments)))
    return calls


def test_serve_collects_the_static_files_then_becomes_gunicorn_with_the_settings(execs, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.WEB_HOST, settings.PORT, settings.WEB_CONCURRENCY, settings.WEB_THREADS, settings.WEB_TIMEOUT = "127.0.0.1", 8123, 3, 5, 45
    out = io.StringIO()

    call_command("serve", stdout=out)

    ((path, arguments),) = execs
    assert arguments[:4] == [path, "-m", "gunicorn", "config.wsgi"]
    options = dict(zip(arguments[4::2], arguments[5::2], strict=True))
    assert options == {"--config": str(django_settings.BASE_DIR / "config" / "gunicorn.py"), "--bind": "127.0.0.1:8123",
                       "--workers": "3", "--threads": "5", "--timeout": "45"}  # fmt: skip
    assert "Serving the console on http://127.0.0.1:8123/ with 3 workers." in out.getvalue()
    assert (settings.STATIC_ROOT / "admin" / "css" / "base.css").exists()  # collected before serving


def test_serve_no_collectstatic_serves_what_is_there(execs, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"

    call_command("serve", "--no-collectstatic", stdout=io.StringIO())

    assert len(execs) == 1 and not settings.STATIC_ROOT.exists()
