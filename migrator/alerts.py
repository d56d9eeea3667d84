"""Telling staff: the admins by mail (Django's ``mail_admins``, to
settings.ADMINS) and a chat channel (a POST of ``{"text": ...}`` to
settings.ALERT_WEBHOOK_URL, the shape Slack, Mattermost and Discord's
``/slack`` endpoint take).

    alert_send(subject="Drift: 5 differences", message="...", key="drift")
    alert_clear(key="drift")        # the condition is gone

Each alert has a ``key``: a condition that persists is told once, again
after ALERT_REPEAT_HOURS, and again at once if it returns after being
cleared. The ``Alert`` rows are the memory, so that holds across restarts
and processes; the open ones are what the dashboard lists.
"""

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Q
from django.utils import timezone

from migrator.models import Alert

log = logging.getLogger("migrator.alerts")
WEBHOOK_TIMEOUT = 5  # seconds, connecting and reading each
SUBJECT_LENGTH = Alert._meta.get_field("subject").max_length


def alert_send(*, subject: str, message: str, key: str) -> bool:
    """Tell the admins and the chat webhook, unless the alert ``key`` is open
    and was told within ALERT_REPEAT_HOURS. Returns whether a destination
    took it. Never raises for a mail server or webhook that fails (each is
    one warning in the log, naming only the webhook's scheme and host).

    Sends at once and can take the mail and webhook timeouts (10 s and
    5 s), so call it outside a transaction."""
    subject = " ".join(subject.split())[:SUBJECT_LENGTH]
    if not _claim(key=key, subject=subject, message=message):
        log.debug("Alert %s: already told within %d h; not sent again.", key, settings.ALERT_REPEAT_HOURS)
        return False
    log.info("Alert %s: sending %r.", key, subject)
    outcomes = [outcome for outcome in (_mail(subject, message, key), _webhook(subject, message, key)) if outcome is not None]
    if not outcomes:
        log.warning("Alert %s: no destination is configured (set ADMINS or ALERT_WEBHOOK_URL): %s", key, subject)
        return False
    if not any(outcomes):
        # Every destination failed: the next call for this key tries again.
        Alert.objects.filter(key=key).update(last_sent_at=None)
        return False
    log.info("Alert %s: sent.", key)
    return True


def alert_clear(*, key: str) -> bool:
    """The condition behind ``key`` is gone: its next alert is sent at once.
    Returns whether an open alert was cleared."""
    cleared = Alert.objects.filter(key=key, cleared_at=None).update(cleared_at=timezone.now())
    if cleared:
        log.info("Alert %s: cleared.", key)
    return bool(cleared)


def alerts_open() -> list[Alert]:
    """The alerts not cleared, newest first."""
    return list(Alert.objects.filter(cleared_at=None).order_by("-opened_at"))


def alert_destinations() -> list[str]:
    """Where alerts go, for people to read: "2 admins by mail", "a chat
    webhook at https://hooks.example.com". Empty when nowhere."""
    destinations = []
    if settings.ADMINS:
        destinations.append(f"{len(settings.ADMINS)} admin{'s' if len(settings.ADMINS) != 1 else ''} by mail")
    if settings.ALERT_WEBHOOK_URL:
        destinations.append(f"a chat webhook at {webhook_origin(settings.ALERT_WEBHOOK_URL)}")
    return destinations


def webhook_origin(url: str) -> str:
    """The scheme and host of a webhook URL: its path and query carry its
    secret, and any user or password before the host is left out too."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def _claim(*, key: str, subject: str, message: str) -> bool:
    """Whether this call is the one to send ``key`` now, decided by the
    database: the row is created, or taken back from cleared, stale or
    undelivered by a conditional update; a process that updates nothing
    leaves the sending to the one that did."""
    now = timezone.now()
    fields = {"subject": subject, "message": message, "last_sent_at": now}
    _, created = Alert.objects.get_or_create(key=key, defaults={**fields, "opened_at": now})
    if created:
        return True
    rows = Alert.objects.filter(key=key)
    if rows.exclude(cleared_at=None).update(**fields, opened_at=now, cleared_at=None):
        return True
    due = Q(last_sent_at=None) | Q(last_sent_at__lt=now - timedelta(hours=settings.ALERT_REPEAT_HOURS))
    return bool(rows.filter(due, cleared_at=None).update(**fields))


def _mail(subject: str, message: str, key: str) -> bool | None:
    """True when the mail went out, False when it failed, None with no ADMINS."""
    if not settings.ADMINS:
        return None
    try:
        mail_admins(subject, message, fail_silently=False)
    except Exception as error:  # noqa: BLE001 - any mail failure is one warning, never the caller's problem
        log.warning("Alert %s: the mail to the admins failed (%s).", key, type(error).__name__)
        return False
    return True


def _webhook(subject: str, message: str, key: str) -> bool | None:
    """True when the webhook answered 2xx, False when it did not, None when
    none is set. Its errors quote the URL, so only their type is logged."""
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        return None
    try:
        response = requests.post(url, json={"text": f"{subject}\n{message}"}, timeout=WEBHOOK_TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        log.warning("Alert %s: the chat webhook at %s did not answer (%s).", key, webhook_origin(url), type(error).__name__)
        return False
    if not 200 <= response.status_code < 300:
        log.warning("Alert %s: the chat webhook at %s answered %d.", key, webhook_origin(url), response.status_code)
        return False
    return True
