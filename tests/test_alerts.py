"""Alerts reach the admins by mail (Django's locmem outbox) and a chat
webhook (a real HTTP server on 127.0.0.1), once per condition."""

import datetime as dt
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from migrator.alerts import alert_clear, alert_destinations, alert_send, alerts_open
from migrator.models import Alert

pytestmark = pytest.mark.django_db
SECRET_PATH = "/services/T000/B000/PLANTED-webhook-secret"


class Chat:
    """A chat service's incoming webhook: keeps what it is sent, answers ``status``."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.status = 200
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                chat.received.append((self.path, json.loads(body)))
                self.send_response(chat.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat(settings):
    served = Chat()
    settings.ALERT_WEBHOOK_URL = served.url
    yield served
    served.close()


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("Ann", "ann@example.test"), ("Bo", "bo@example.test")]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_alert_goes_to_the_admins_by_mail_and_to_the_chat_webhook(admins, chat):
    sent = alert_send(subject="Drift: 2 differences", message="Paintings without a record: 2", key="drift")

    assert sent is True
    (message,) = mail.outbox
    assert message.to == ["ann@example.test", "bo@example.test"]
    assert message.subject == "[painting console] Drift: 2 differences"
    assert message.body == "Paintings without a record: 2"
    assert chat.received == [(SECRET_PATH, {"text": "Drift: 2 differences\nPaintings without a record: 2"})]
    alert = Alert.objects.get(key="drift")
    assert alert.is_open and alert.last_sent_at is not None
    assert alerts_open() == [alert]


def test_a_condition_that_persists_is_told_once(admins, chat):
    assert alert_send(subject="Stuck", message="first", key="stuck") is True
    assert alert_send(subject="Stuck", message="second", key="stuck") is False
    assert alert_send(subject="Stuck", message="third", key="stuck") is False

    assert len(mail.outbox) == 1 and len(chat.received) == 1
    assert Alert.objects.get(key="stuck").message == "first"


def test_a_condition_that_persists_is_told_again_after_the_repeat_period(admins, settings):
    settings.ALERT_REPEAT_HOURS = 24
    alert_send(subject="Stuck", message="first", key="stuck")
    Alert.objects.filter(key="stuck").update(last_sent_at=timezone.now() - dt.timedelta(hours=23))
    assert alert_send(subject="Stuck", message="not yet", key="stuck") is False

    Alert.objects.filter(key="stuck").update(last_sent_at=timezone.now() - dt.timedelta(hours=25))
    assert alert_send(subject="Stuck", message="a day on", key="stuck") is True

    assert [message.body for message in mail.outbox] == ["first", "a day on"]


def test_a_cleared_condition_that_returns_is_told_again_at_once(admins):
    alert_send(subject="Drift: 1 difference", message="first", key="drift")
    opened = Alert.objects.get(key="drift").opened_at

    assert alert_clear(key="drift") is True
    assert alert_clear(key="drift") is False  # already cleared
    assert alerts_open() == []
    assert alert_send(subject="Drift: 3 differences", message="back", key="drift") is True

    assert [message.body for message in mail.outbox] == ["first", "back"]
    alert = Alert.objects.get(key="drift")
    assert alert.is_open and alert.opened_at > opened and alert.subject == "Drift: 3 differences"


def test_each_key_is_its_own_condition(admins):
    assert alert_send(subject="Drift", message="", key="drift") is True
    assert alert_send(subject="Stuck", message="", key="stuck") is True
    assert len(mail.outbox) == 2


def test_a_failing_mail_server_and_webhook_are_one_warning_each_without_the_webhooks_secret(admins, chat, settings, caplog):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    chat.status = 500
    caplog.set_level(logging.INFO, logger="migrator.alerts")

    sent = alert_send(subject="Drift", message="lost", key="drift")

    assert sent is False
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == [
        "Alert drift: the mail to the admins failed (ConnectionRefusedError).",
        f"Alert drift: the chat webhook at http://127.0.0.1:{chat.server.server_port} answered 500.",
    ]
    assert "PLANTED-webhook-secret" not in caplog.text
    # Nobody was told: the next call tries again, and is told.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    chat.status = 200
    assert alert_send(subject="Drift", message="again", key="drift") is True
    assert [body["text"] for _, body in chat.received] == ["Drift\nlost", "Drift\nagain"]


def test_a_webhook_that_does_not_answer_is_one_warning_and_mail_still_goes(admins, settings, caplog):
    settings.ALERT_WEBHOOK_URL = f"https://user:PLANTED-password@127.0.0.1:{closed_port()}{SECRET_PATH}"

    assert alert_send(subject="Stuck", message="", key="stuck") is True

    assert len(mail.outbox) == 1
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning.startswith("Alert stuck: the chat webhook at https://127.0.0.1:") and warning.endswith("did not answer (ConnectionError).")
    assert "PLANTED" not in caplog.text


def test_with_no_destination_nothing_is_sent_but_the_alert_stays_open(settings, caplog):
    settings.ADMINS, settings.ALERT_WEBHOOK_URL = [], ""

    assert alert_send(subject="Drift", message="", key="drift") is False
    assert alert_send(subject="Drift", message="", key="drift") is False

    assert mail.outbox == []
    assert [alert.key for alert in alerts_open()] == ["drift"]
    assert "no destination is configured (set ADMINS or ALERT_WEBHOOK_URL)" in caplog.text
    assert alert_destinations() == []


def test_the_destinations_are_named_without_the_webhooks_secret(admins, chat):
    assert alert_destinations() == ["2 admins by mail", f"a chat webhook at http://127.0.0.1:{chat.server.server_port}"]
