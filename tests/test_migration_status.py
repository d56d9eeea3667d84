"""python manage.py migration_status: the Markdown report, from realistic state rows."""

import datetime as dt
import io
import itertools

import pytest
from django.core.management import call_command

from migrator.models import TransferEvent, Transfer, SkipReason, Status, Verification
from migrator.failures import error_signature
from migrator.services.report import migration_status, migration_status_markdown

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
JEFFREY, AMELIA, GUESTS = "did:plc:jeffrey0000000000000000", "did:plc:amelia00000000000000000", "did:plc:anon000000000000000000000"
_refs = itertools.count(1)


def painting(*, did="", handle="", owner="", status=Status.MIGRATED, **fields) -> Transfer:
    return Transfer(ref=f"{next(_refs):024x}", owner=owner, owner_handle=handle, account_did=did, status=status, **fields)


def migrated(number: int, **fields) -> dict:
    """A migrated painting's fields: the n-th one migrated a minute after the last."""
    thumbnail = {"blob_size": 40_000, "blob_mime": "image/png", "blob_fallback": "png"}
    return {"status": Status.MIGRATED, "migrated_at": START + dt.timedelta(minutes=number), **thumbnail, **fields}


def failed(kind: str, error: str) -> dict:
    return {"status": Status.FAILED, "error_kind": kind, "last_error": error, "attempts": 3}


def skipped(reason: str) -> dict:
    return {"status": Status.SKIPPED, "skip_reason": reason, "skip_detail": "…"}


@pytest.fixture
def rows():
    jeffrey = {"did": JEFFREY, "handle": "jeffrey", "owner": "auth0|jeffrey"}
    amelia = {"did": AMELIA, "handle": "amelia", "owner": "auth0|amelia"}
    guest = {"did": GUESTS}
    paintings = [
        painting(**jeffrey, **migrated(0)),
        painting(**jeffrey, **migrated(1, nuked=True)),
        painting(**jeffrey, **migrated(2, content={"recording": True})),
        painting(**jeffrey, **migrated(3, blob_fallback="png-quantized-256", blob_size=90_000)),
        painting(**jeffrey, **migrated(4, blob_fallback="jpeg-q85", blob_mime="image/jpeg", blob_size=60_000)),
        painting(**jeffrey, **failed("transient", "upload a 51234-byte blob for did:plc:jeffrey0000000000000000: no response (ConnectError)\nTraceback …")),
        painting(**jeffrey, **skipped(SkipReason.IMAGE_MISSING)),
        painting(**amelia, **migrated(5)),
        painting(**amelia, **migrated(6, blob_fallback="jpeg-q85", blob_mime="image/jpeg", blob_size=70_000)),
        painting(**amelia, **failed("transient", "upload a 40000-byte blob for did:plc:amelia00000000000000000: no response (ConnectError)")),
        painting(**amelia, **failed("transient", "upload a 38000-byte blob for did:plc:amelia00000000000000000: no response (ConnectError)")),
        painting(**amelia, **failed("permanent", "create computer.aesthetic.painting/3k5pqiu23u2dq: 400 InvalidRecord: bad")),
        painting(**guest, **migrated(7)),
        painting(**guest, **migrated(8, content={"recording": True})),
        painting(**guest, **migrated(9)),
        painting(**guest, **skipped(SkipReason.DUPLICATE_CODE)),
        painting(**guest, **skipped(SkipReason.BAD_WHEN)),
        painting(**guest, **skipped(SkipReason.MISSING_SLUG)),
        painting(owner="auth0|blocked", **skipped(SkipReason.NO_ACCOUNT)),
        painting(owner="auth0|blocked", **skipped(SkipReason.NO_ACCOUNT)),
        painting(**guest, status=Status.PENDING),
    ]
    Transfer.objects.bulk_create(paintings)
    first = Transfer.objects.get(ref=paintings[0].ref)
    claim = TransferEvent.objects.create(transfer=first, from_status="pending", to_status="running", actor="engine")
    TransferEvent.objects.filter(pk=claim.pk).update(at=START - dt.timedelta(minutes=1))  # the run began a minute before the first record
    return paintings


def report() -> str:
    return migration_status_markdown(migration_status(now=dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)))


def test_it_counts_paintings_by_status_and_skip_reason(rows):
    markdown = report()

    assert markdown.startswith("# ATProto migration status\n\nGenerated 2026-11-20 13:00:00 UTC.\n")
    assert "**10 of 21 paintings migrated** (47.6%) to 3 accounts." in markdown
    assert "| Migrated | 10 |" in markdown
    assert "| Skipped | 6 |" in markdown
    assert "| Failed | 4 |" in markdown
    assert "| Pending | 1 |" in markdown
    assert "| **Total** | 21 |" in markdown
    assert "| No ATProto account | 2 |" in markdown
    assert "| Image missing | 1 |" in markdown and "| Duplicate code | 1 |" in markdown


def test_it_lists_the_accounts_with_the_most_paintings_first(rows):
    markdown = report()

    assert "The 4 owners with the most paintings (3 ATProto accounts in all):" in markdown
    table = markdown.split("## Accounts")[1].split("##")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ") and "Handle" not in line]
    assert lines[0] == f"| anonymous (guests) | `{GUESTS}` | 7 | 3 | 3 | 0 |"
    assert lines[1] == f"| @jeffrey | `{JEFFREY}` | 7 | 5 | 1 | 1 |"
    assert lines[2] == f"| @amelia | `{AMELIA}` | 5 | 2 | 0 | 3 |"
    assert lines[3] == "| auth0\\|blocked (no handle) | — | 2 | 0 | 2 | 0 |"


def test_it_gives_the_start_the_end_and_the_rate(rows):
    markdown = report()

    assert "- Started: 2026-11-20 11:59:00 UTC" in markdown  # the first claim, before the first record
    assert "- Last painting migrated: 2026-11-20 12:09:00 UTC" in markdown
    assert "- Duration: 10.0 minutes" in markdown
    assert "- Rate: 1.0 paintings/minute" in markdown


def test_it_groups_failures_by_kind_and_normalized_first_line(rows):
    status = migration_status()

    assert [(group.error_kind, group.count) for group in status.failures] == [("transient", 3), ("permanent", 1)]
    transient = status.failures[0]
    assert transient.error == "upload a <n>-byte blob for <did>: no response (ConnectError)"
    assert transient.refs == [rows[5].ref, rows[9].ref, rows[10].ref]
    markdown = report()
    assert f"| Transient | `upload a <n>-byte blob for <did>: no response (ConnectError)` | 3 | `{rows[5].ref}`" in markdown
    assert "| Permanent | `create computer.aesthetic.painting/<rkey>: <n> InvalidRecord: bad` | 1 |" in markdown


def test_it_names_the_edge_cases_met(rows):
    markdown = report()

    assert "| Nuked paintings migrated with `nuked: true` | 1 |" in markdown
    assert "| Missing images (404), skipped | 1 |" in markdown
    assert "| Duplicate codes (the oldest painting keeps the code), skipped | 1 |" in markdown
    assert "| Malformed documents, skipped | 2 |" in markdown
    assert "| Malformed, of which: `when` is not a date | 1 |" in markdown
    assert "| Owners without an ATProto account, skipped | 2 |" in markdown
    assert "| Thumbnails that needed a fallback encoding | 3 |" in markdown
    assert "| Paintings with a recording (recordingUrl) migrated | 2 |" in markdown
    assert "| Guest paintings migrated to the anonymous account | 3 |" in markdown


def test_it_totals_the_thumbnails_and_their_fallbacks(rows):
    markdown = report()

    assert "- Uploaded: 10 thumbnails, 488.3 KB in total (500000 bytes); average 48.8 KB, largest 87.9 KB" in markdown
    assert "- By type: image/png 8, image/jpeg 2" in markdown
    assert "| `jpeg-q85` | 2 |" in markdown and "| `png-quantized-256` | 1 |" in markdown


def test_an_empty_state_table_reports_nothing_migrated_yet():
    markdown = report()
    assert "**0 of 0 paintings migrated** (0%)" in markdown
    assert "Nothing migrated yet." in markdown and "No thumbnails uploaded yet." in markdown
    assert "## Verification\n\nNever verified: the verification schedule compares everything every 24 h" in markdown


def test_it_says_when_it_was_last_verified_and_what_differed(rows):
    Verification.objects.create(
        actor="schedule:verification", started_at=dt.datetime(2026, 11, 20, 9, 58, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC), documents=21, records=9, differences=3,
        counts={"missing_record": 2, "orphan_record": 1},
    )  # fmt: skip

    section = report().split("## Verification\n\n")[1].split("\n## ")[0]

    assert section.startswith("Verified 3 h 00 min ago: 3 differences. (schedule:verification, started 2026-11-20 09:58:00 UTC)\n")
    assert "| Paintings without a record | 2 |" in section and "| Records without a painting | 1 |" in section


def test_the_command_prints_to_stdout_or_writes_the_file(rows, tmp_path):
    out = io.StringIO()
    call_command("migration_status", stdout=out)
    assert out.getvalue().startswith("# ATProto migration status\n")

    target = tmp_path / "reports" / "ATPROTO-MIGRATION-STATUS.md"
    out = io.StringIO()
    call_command("migration_status", "--output", str(target), stdout=out)
    assert out.getvalue() == f"Wrote the migration status report to {target}.\n"
    assert "## Failures, by error" in target.read_text()


@pytest.mark.parametrize(
    ("error", "signature"),
    [
        ("get https://example.test/media/@jeffrey/painting/1.2.png: 404\nmore", "get <url> <n>"),
        ("", "(no message)"),
        ("painting 6b04d08733f638925f0e7218 at at://did:plc:x/c/3k5pqiu23u2dq", "painting <ref> at <uri>"),
        ("Record key 3k5pqiu23u2dq holds another painting", "Record key <rkey> holds another painting"),
        ("Not authenticated: password refused", "Not authenticated: password refused"),
    ],
)
def test_error_signatures_keep_the_first_line_without_its_variable_parts(error, signature):
    assert error_signature(error) == signature
