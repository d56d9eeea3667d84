"""Bad configuration is reported at start-up by `manage.py check`, with what to set."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check(**environment):
    env = {**os.environ, **environment}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_defaults_pass_the_checks():
    result = check()
    assert result.returncode == 0, result.stderr


def test_bad_values_are_reported_with_the_variable_to_set():
    result = check(
        DATABASE_URL="mysql://nope",
        MONGODB_URI="http://example.test",
        NUKED_PAINTINGS="sometimes",
        IMAGE_FETCH_MAX_BYTES="lots",
        DEBUG="perhaps",
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    for hint in ("Set DATABASE_URL", "Set MONGODB_URI", "Set NUKED_PAINTINGS to one of: flag, skip", "Set IMAGE_FETCH_MAX_BYTES", "Set DEBUG to true or false"):
        assert hint in result.stderr


def test_bad_alert_verification_and_health_values_are_reported_without_echoing_a_secret():
    result = check(
        ADMINS="the migration team",
        ALERT_WEBHOOK_URL="hooks.example.test/services/PLANTED-webhook-secret",
        VERIFY_EVERY_HOURS="0",
        STUCK_AFTER_MINUTES="soon",
        HEALTH_REQUIRE_CLUSTER="perhaps",
        HEALTH_TIMEOUT="quick",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    for hint in ("Set ADMINS to mail addresses", "Set ALERT_WEBHOOK_URL", "Set VERIFY_EVERY_HOURS to at least 1",
                 "Set STUCK_AFTER_MINUTES", "Set HEALTH_REQUIRE_CLUSTER to true or false", "Set HEALTH_TIMEOUT"):  # fmt: skip
        assert hint in result.stderr, hint
    assert "PLANTED" not in result.stderr + result.stdout


def test_a_bad_value_stops_a_command_before_it_runs():
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_paintings"],
        cwd=ROOT,
        env={**os.environ, "MONGODB_URI": "not-a-url"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Set MONGODB_URI" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_secrets_key_that_is_not_a_fernet_key_is_named_by_position_never_by_value():
    result = check(SECRETS_ENCRYPTION_KEYS="KWl7oT3nq0bU1W9sWq8eRrXg9b0c4lVx2hZr5t8m1jA=,not-a-key-s3cret")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Key 2 of 2 in SECRETS_ENCRYPTION_KEYS is not a Fernet key" in result.stderr and "Set SECRETS_ENCRYPTION_KEYS" in result.stderr
    assert "not-a-key-s3cret" not in result.stderr + result.stdout


def test_a_database_password_is_never_echoed():
    result = check(DATABASE_URL="mysql://user:s3cret-pass@db/x")
    assert result.returncode != 0 and "Set DATABASE_URL" in result.stderr  # it did report the URL...
    assert "s3cret-pass" not in result.stderr + result.stdout  # ...without its password


PRODUCTION = {
    "SECRET_KEY": "q8Jz-3vNw7Ld0pXr2TfY9mKc5HbG1sRe6UaW4oPi8EyZ0nMl7dQ",
    "SECRETS_ENCRYPTION_KEYS": "v2aPWBXzlAMXFHUlh2OzU1GrAadrXFiOZCLkfoO7YcI=",
    "ALLOWED_HOSTS": "migrate.aesthetic.computer",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "SYNC_WEBHOOK_SECRET": "hook-secret-value",
    "PDS_ADMIN_PASSWORD": "admin-password-value",
    "LEXICON_ACCOUNT_PASSWORD": "lexicon-password-value",
    "PDS_URL": "https://at.aesthetic.computer",
    "USER_MEDIA_URL": "https://aesthetic.computer/media",
    "GUEST_MEDIA_URL": "https://art.aesthetic.computer",
    "MONGODB_URI": "mongodb://mongo.aesthetic.computer:27017/",
    "PDS_HANDLE_DOMAIN": ".aesthetic.computer",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "HTTPS": "true",
    "ADMINS": "Migration team <migration@aesthetic.computer>",
}


def check_deploy(**environment):
    # Nothing of this test process's own set-up (the browser test sets DJANGO_ALLOW_ASYNC_UNSAFE).
    env = {key: value for key, value in os.environ.items() if key not in PRODUCTION and key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env={**env, **environment}, capture_output=True, text=True)


def test_check_deploy_lists_everything_production_needs_on_an_unconfigured_checkout():
    result = check_deploy()
    assert result.returncode != 0
    for variable in ("SECRET_KEY", "SECRETS_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "DATABASE_URL=postgres", "SYNC_WEBHOOK_SECRET", "PDS_ADMIN_PASSWORD",
                     "LEXICON_ACCOUNT_PASSWORD", "PDS_URL", "USER_MEDIA_URL", "MONGODB_URI", "PDS_HANDLE_DOMAIN", "REDIS_URL",
                     "ADMINS"):  # fmt: skip
        assert f"Set {variable}" in result.stderr, variable


def test_check_deploy_passes_when_production_is_configured_and_shows_no_value():
    result = check_deploy(**PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "migrator." not in result.stdout + result.stderr
    for secret in ("hook-secret-value", "admin-password-value", "lexicon-password-value", PRODUCTION["SECRET_KEY"], PRODUCTION["SECRETS_ENCRYPTION_KEYS"]):
        assert secret not in result.stdout + result.stderr
