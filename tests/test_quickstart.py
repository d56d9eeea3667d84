"""The README's quick start, as a newcomer runs it: ``bin/demo --scale 0.1``.

The real script in a child process, with its own folder (DEMO_DIR), its own
sample images (SAMPLE_IMAGES_DIR) and free ports for its MongoDB, image
server and PDS, so it touches nothing of a developer's var/demo."""

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from migrator.kinds import KINDS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.pds,
    pytest.mark.slow,
    # bin/demo unsets DATABASE_URL: it is the same SQLite run in either leg of CI.
    pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="bin/demo always runs on SQLite; the SQLite leg runs it"),
]


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_the_demo_at_a_tenth_migrates_the_corpus_and_compare_is_clean(tmp_path):
    env = {
        **os.environ, "DEMO_DIR": str(tmp_path / "demo"), "SAMPLE_IMAGES_DIR": str(tmp_path / "images"),
        "LOCAL_MONGO_PORT": free_port(), "LOCAL_IMAGES_PORT": free_port(), "PDS_PORT": free_port(),
    }  # fmt: skip
    result = subprocess.run([str(ROOT / "bin" / "demo"), "--scale", "0.1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    assert "$ manage.py compare all" in out
    for kind in KINDS.values():  # every kind compared, each clean
        assert re.search(rf"Compared \d+ MongoDB {kind.plural} with \d+ records in \d+ accounts.\nNo differences.", out), (kind.plural, out[-3000:])
    assert "failed:   0" in out
    migrated = re.search(r"\*\*(\d+) of (\d+) paintings migrated\*\*", out)
    assert migrated and 385 <= int(migrated[2]) <= 395 and int(migrated[1]) >= int(migrated[2]) - 15, out[-3000:]
    assert (tmp_path / "demo" / "PAINTING-MIGRATION-STATUS.md").exists()
