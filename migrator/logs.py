"""How the console's log lines leave the process: plain for a person, or one
JSON object a line for a log shipper (``LOG_FORMAT=json``), and never with a
secret in them.

Nothing the console logs on purpose holds a secret; ``HideSecrets`` is the
second line of defence, on the one handler every line goes through: it
blanks the values of the secret settings, the passwords inside the URL
settings, anything shaped like a session token (a JWT), and the account
passwords this process has sent to the PDS (``hide``), in the message and
in an exception's traceback alike.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

HIDDEN = "[hidden]"
# Settings whose whole value is a secret, and URL settings that may carry a
# password (the alert webhook's URL is itself the credential).
SECRET_SETTINGS = (
    "SECRET_KEY", "PDS_ADMIN_PASSWORD", "LEXICON_ACCOUNT_PASSWORD", "PDS_RATE_LIMIT_BYPASS_KEY",
    "SYNC_WEBHOOK_SECRET", "EMAIL_HOST_PASSWORD", "METRICS_TOKEN", "ALERT_WEBHOOK_URL",
)  # fmt: skip
URL_SETTINGS = ("MONGODB_URI", "DATABASE_URL", "PDS_URL", "REDIS_URL")
# A JWT's header and claims (session tokens: access and refresh).
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+(?:\.[\w-]*)?")
SHORTEST = 6  # shorter values would blank ordinary words

_sent: set[str] = set()


def hide(secret) -> None:
    """Keep ``secret`` (a password this process sends) out of every log line.
    Whatever its type: a password of the wrong type is still one."""
    text = "" if secret is None else str(secret)
    if len(text) >= SHORTEST:
        _sent.add(text)


def secrets_known() -> list[str]:
    """Every value to blank, longest first (so a secret that contains another
    is blanked whole)."""
    found = set(_sent)
    for name in SECRET_SETTINGS:
        value = getattr(settings, name, "")
        if isinstance(value, str) and len(value) >= SHORTEST:
            found.add(value)
    for key in getattr(settings, "SECRETS_ENCRYPTION_KEYS", ()):
        found.add(key)
    for name in URL_SETTINGS:
        try:
            password = urlsplit(getattr(settings, name, "") or "").password
        except ValueError:
            password = None
        if password and len(password) >= SHORTEST:
            found.add(password)
    return sorted(found, key=len, reverse=True)


def blank(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every known secret and every JWT replaced by [hidden]."""
    for secret in secrets_known() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return JWT.sub(HIDDEN, text)


class HideSecrets(logging.Filter):
    """Blank secrets in a record's message and traceback before any formatter
    sees them. Changes the record (each handler's formatter then shows the
    blanked text); never drops one."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secrets_known()
        message = record.getMessage()
        record.msg, record.args = blank(message, secrets), None
        if record.exc_info:
            record.exc_text = blank(self._formatter.formatException(record.exc_info), secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = blank(record.exc_text, secrets)
        return True


def json_formatter() -> JsonFormatter:
    """One JSON object a line: time, level, logger, message, and the fields a
    call adds (``extra={"kind": ..., "ref": ...}``), the traceback as
    ``exc_info``."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


@contextmanager
def document_lines_for(verbosity: int) -> Iterator[None]:
    """While a command a person runs runs: its own report says what became of
    each document, so in the plain format the per-document lines of
    ``migrator.documents`` below a warning wait for ``-v 2``. A log shipper
    (``LOG_FORMAT=json``) gets every line. The logger's level is put back
    afterwards, so a command called in-process leaves the caller's logging
    as it found it."""
    logger = logging.getLogger("migrator.documents")
    before = logger.level
    if settings.LOG_FORMAT == "plain" and verbosity < 2:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)
