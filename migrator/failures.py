"""How two failures are told to be the same: the one rule that groups them
for the dashboard, the metrics, the status report and the backfill's
summary. Below everything that groups failures (the selectors and the
engine alike), so that none imports another for it."""

import hashlib
import re

from migrator import logs

# What varies between two occurrences of the same failure: identifiers,
# numbers, quoted values. Replaced so that the occurrences group together.
_NORMALIZERS = (
    (re.compile(r"did:[a-z]+:[A-Za-z0-9._%-]+(?::[A-Za-z0-9._%-]+)*"), "<did>"),  # not a trailing colon
    (re.compile(r"at://\S+"), "<uri>"),
    (re.compile(r"https?://\S+"), "<url>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<value>"),
    (re.compile(r"\b[0-9a-fA-F]{24}\b"), "<ref>"),
    (re.compile(r"\b(?=[a-z]*[2-7])[234567a-j][234567a-z]{12}\b"), "<rkey>"),  # a TID, not a 13-letter word
    (re.compile(r"\b(?:baf|bafy)[a-z2-7]{20,}\b"), "<cid>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def error_signature(last_error: str, secrets: list[str] | None = None) -> str:
    """The first line of an error with its particulars blanked out, so that
    "timed out after 30 s fetching /a.png" and "... 31 s ... /b.png" match,
    and anything secret in it hidden (``logs.blank``; ``secrets`` saves
    reading them again for each of many errors). The one rule for grouping
    failures: the dashboard, the metrics, the status report and the backfill
    summary all use it."""
    first_line = (last_error or "").strip().splitlines()[0] if (last_error or "").strip() else "(no message)"
    first_line = logs.blank(first_line, secrets)
    for pattern, placeholder in _NORMALIZERS:
        first_line = pattern.sub(placeholder, first_line)
    return first_line[:200]


def failure_group_key(error_kind: str, signature: str) -> str:
    return hashlib.sha1(f"{error_kind}\n{signature}".encode()).hexdigest()[:16]
