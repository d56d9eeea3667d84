"""Log lines an operator can ship: one JSON object a line with each
document's kind and ref, and never a secret, whatever the line carries."""

import io
import json
import logging

import pytest

from migrator import logs
from migrator.kinds import KINDS
from tests.plugins.kinds import document_fields

JWT = "eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJkaWQ6cGxjOnBsYW50ZWQifQ.c2lnbmF0dXJl"


@pytest.fixture
def shipped(settings):
    """A handler as settings.LOGGING makes it for LOG_FORMAT=json; what it wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.json_formatter())
    handler.addFilter(logs.HideSecrets())
    logger = logging.getLogger("migrator.test-shipped")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_fields_a_call_adds(shipped):
    logger, stream = shipped
    logger.warning("painting %s: running -> failed", "65e3", extra={"kind": "painting", "ref": "65e3", "status": "failed"})
    (line,) = lines(stream)
    assert line["level"] == "WARNING" and line["logger"] == "migrator.test-shipped" and line["time"]
    assert line["message"] == "painting 65e3: running -> failed"
    assert (line["kind"], line["ref"], line["status"]) == ("painting", "65e3", "failed")


def test_no_secret_leaves_in_a_message_or_a_traceback(shipped, settings):
    logger, stream = shipped
    planted = {
        "PDS_ADMIN_PASSWORD": "PLANTED-admin-password", "SYNC_WEBHOOK_SECRET": "PLANTED-hook-secret",
        "EMAIL_HOST_PASSWORD": "PLANTED-mail-password", "METRICS_TOKEN": "PLANTED-metrics-token",
        "ALERT_WEBHOOK_URL": "https://hooks.example.test/services/PLANTED-webhook", "SECRET_KEY": "PLANTED-django-secret-key",
        "MONGODB_URI": "mongodb://migrator:PLANTED-mongo-password@db.example.test:27017/",
        "DATABASE_URL": "postgres://console:PLANTED-db-password@pg.example.test/console",
    }  # fmt: skip
    for name, value in planted.items():
        setattr(settings, name, value)
    logs.hide("PLANTED-account-password")
    everything = " ".join([*planted.values(), "PLANTED-account-password", JWT, *settings.SECRETS_ENCRYPTION_KEYS])

    logger.error("told: %s", everything)
    try:
        raise RuntimeError(f"the PDS said no to {everything}")
    except RuntimeError:
        logger.exception("a call failed")

    text = stream.getvalue()
    assert "PLANTED" not in text and "eyJ" not in text
    assert not any(key in text for key in settings.SECRETS_ENCRYPTION_KEYS)
    told, failed = lines(stream)
    assert told["message"].startswith("told: [hidden] [hidden]")
    assert "db.example.test" in told["message"]  # only the password of a URL setting is blanked
    assert failed["exc_info"].startswith("Traceback") and "RuntimeError: the PDS said no to [hidden]" in failed["exc_info"]


def test_a_plain_line_is_blanked_too(settings, caplog):
    settings.PDS_ADMIN_PASSWORD = "PLANTED-admin-password"
    record = logging.makeLogRecord({"msg": "admin password %s", "args": ("PLANTED-admin-password",), "levelno": logging.INFO})
    logs.HideSecrets().filter(record)
    assert logging.Formatter("%(message)s").format(record) == "admin password [hidden]"


@pytest.mark.pds
@pytest.mark.slow
@pytest.mark.django_db
def test_a_backfill_logs_each_documents_outcome_as_json_with_its_kind_and_ref_and_no_secret(console, world):
    handle = next(iter(world.users))
    painted = [world.add_painting(handle=handle) for _ in range(2)]
    missing = world.add_painting(handle=handle, image=False)
    mood = world.add_document(KINDS["mood"], handle=handle, **document_fields(KINDS["mood"], 1))
    console.env["LOG_FORMAT"] = "json"

    result = console.run("backfill", "all")

    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    outcomes = {(line["kind"], line["ref"]): line["status"] for line in records if line["logger"] == "migrator.documents" and line["level"] != "DEBUG"}
    assert outcomes == {**{("painting", ref): "migrated" for ref in painted}, ("painting", missing): "skipped", ("mood", mood): "migrated"}
    assert all(line["from_status"] and line["actor"].startswith("command:backfill") for line in records if line["logger"] == "migrator.documents")
    (progress,) = [line for line in records if line["logger"] == "migrator.backfill"]  # no progress bar drawn into the log
    assert (progress["done"], progress["total"]) == (4, 4)
    assert console.env["PDS_ADMIN_PASSWORD"] not in result.stderr + result.stdout
    assert "eyJ" not in result.stderr  # no session token


@pytest.mark.pds
@pytest.mark.django_db
def test_a_backfill_run_by_hand_keeps_to_its_report_unless_asked(console, world):
    world.add_painting(handle=next(iter(world.users)))
    quiet = console.run("backfill_paintings")
    assert "migrator.documents" not in quiet.stderr and "migrated: 1" in quiet.stdout
    world.add_painting(handle=next(iter(world.users)))
    told = console.run("backfill_paintings", "-v", "2")
    assert "INFO migrator.documents: painting " in told.stderr and "-> migrated" in told.stderr


def test_a_password_of_the_wrong_type_is_hidden_too(shipped):
    logger, stream = shipped
    logs.hide(987654321), logs.hide(None), logs.hide("")
    logger.error("the SDK refused %s", 987654321)
    assert lines(stream)[0]["message"] == "the SDK refused [hidden]"


def test_a_quieted_command_gives_the_logger_its_level_back(settings):
    settings.LOG_FORMAT = "plain"
    documents = logging.getLogger("migrator.documents")
    before = documents.level
    with logs.document_lines_for(1):
        assert documents.getEffectiveLevel() == logging.WARNING
    assert documents.level == before
    with logs.document_lines_for(2):
        assert documents.level == before
