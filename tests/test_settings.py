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


def test_a_database_password_is_never_echoed():
    result = check(DATABASE_URL="mysql://user:s3cret-pass@db/x")
    assert "s3cret-pass" not in result.stderr + result.stdout
