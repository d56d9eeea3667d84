"""Migration 0011 takes what is particular to one kind off every row: a
painting's (a tape's, a program's, a piece's) slug and code, and whether a
painting's recording was found, move into the row's ``content``; the
thumbnail's columns become the record's blob's. Every row keeps every other
value, the next seed finds nothing to change (no fingerprint moves, so no
record is written again after an upgrade), and it reverses.

On SQLite and on PostgreSQL (bin/test's two legs)."""

import datetime as dt
import io

import pytest
from django.core.management import call_command

from migrator.kinds import KINDS
from migrator.models import Status, Transfer
from tests.migration_steps import migrate, state_at

BEFORE, AFTER = ("migrator", "0010_transfer"), ("migrator", "0011_kind_neutral_columns")
RENAMED = {"thumbnail_cid": "blob_cid", "thumbnail_size": "blob_size", "thumbnail_mime": "blob_mime", "thumbnail_fallback": "blob_fallback"}
MOVED = ("slug", "code", "has_recording")
# What each kind wrote into the old columns and content (its row_values before 0011).
OLD_ROW = {
    "painting": lambda n: {"slug": f"2024.1.{n}.0.0.00.000", "code": f"c{n}", "content": {}},
    "mood": lambda n: {"slug": "", "code": "", "content": {"mood": f"feeling {n} 🙂"}},
    "kidlisp": lambda n: {"slug": "", "code": f"k{n}", "content": {"source": f"(wipe {n})"}},
    "piece": lambda n: {"slug": f"wand-{n}", "code": "", "content": {}},
    "tape": lambda n: {"slug": f"tape-{n}", "code": f"t{n}", "content": {}},
    "news": lambda n: {"slug": "", "code": "", "content": {"body": f"news {n}", "tags": ["a"]}},
}


@pytest.fixture
def at_0010(transactional_db):
    yield from state_at(BEFORE)


def rows_of(apps) -> list[dict]:
    return list(apps.get_model("migrator", "Transfer").objects.order_by("id").values())


def test_the_kinds_fields_move_into_content_keeping_every_row_and_event_and_reverse(at_0010):
    rows = at_0010.get_model("migrator", "Transfer")
    events = at_0010.get_model("migrator", "TransferEvent")
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for number, (kind, status) in enumerate((kind, status) for kind in KINDS for status in Status.values):
        blob = {"thumbnail_cid": f"bafkrei{number:08d}", "thumbnail_size": 4000 + number, "thumbnail_mime": "image/png",
                "thumbnail_fallback": "jpeg-q85" if number % 2 else ""} if kind in ("painting", "tape") and status == "migrated" else {}  # fmt: skip
        row = rows.objects.create(
            kind=kind, ref=f"{number:024x}", label=f"label {number}", owner=f"auth0|{number % 3}", owner_handle=f"h{number % 3}",
            status=status, when=now - dt.timedelta(days=number), rkey=f"3k{number:011d}", source_fingerprint=f"fp{number}",
            has_recording=kind == "painting" and number % 2 == 0, **OLD_ROW[kind](number), **blob,
        )  # fmt: skip
        events.objects.create(transfer=row, from_status="", to_status=status, actor="seed", message=f"Seeded {number}.")
    before = rows_of(at_0010)
    assert len(before) == len(KINDS) * len(Status.values)

    after = rows_of(migrate(AFTER))

    assert [row["id"] for row in after] == [row["id"] for row in before]
    for old, new in zip(before, after, strict=True):
        kept = {name: value for name, value in old.items() if name not in (*MOVED, *RENAMED, "content")}
        assert {name: new[name] for name in kept} == kept
        assert {RENAMED[name]: old[name] for name in RENAMED} == {name: new[name] for name in RENAMED.values()}
        assert not set(MOVED) & set(new)
        kind = KINDS[old["kind"]]
        # What the kind's row_values writes now: the next seed finds it as it would write it.
        expected = {**old["content"], **{name: old[name] for name in ("slug", "code") if name in _keys(kind)}}
        if old["has_recording"]:
            expected["recording"] = True
        assert new["content"] == expected, old["kind"]
    assert at_0010.get_model("migrator", "TransferEvent").objects.count() == len(before)

    assert rows_of(migrate(BEFORE)) == before


def _keys(kind) -> set[str]:
    """The content keys the kind's row_values writes (read off a good document)."""
    from tests.plugins.kinds import document_fields

    if kind.name == "painting":
        document = {"slug": "2024.1.1.0.0.00.000", "code": "a"}
    else:
        document = document_fields(kind, 1)
    return set(kind.row_values(kind.read({"when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), **document}))["content"])


@pytest.mark.slow
@pytest.mark.pds
def test_a_migrated_console_is_the_same_after_going_back_and_forth_and_the_next_seed_changes_nothing(transactional_db, world):
    """Filled by the real seed and backfill of every kind (a guest painting
    whose slug names its recording, a user's whose recording the engine
    found): back to 0010 the old columns hold each value, forward again
    every row is as it was, and a seed and a comparison after it find
    nothing to do."""
    from tests.plugins.kinds import document_fields, media_put

    handle = next(iter(world.users))
    found = world.add_painting(handle=handle)
    recording = world.images / "media" / f"@{handle}" / "painting" / f"{world.paintings[found]['slug']}.zip"
    recording.write_bytes(b"PK\x05\x06" + bytes(18))  # on storage; MongoDB knows nothing of it
    world.add_painting(handle=None, slug="2024.1.1.1.1.1.001:2024.1.1.1.1.1.002")
    for kind in KINDS.values():
        if kind.name != "painting":
            ref = world.add_document(kind, handle=handle, **document_fields(kind, 3))
            media_put(world, kind, world.documents[ref])
    call_command("seed", "all", stdout=io.StringIO())
    call_command("backfill", "all", workers=1, stdout=io.StringIO(), stderr=io.StringIO())
    before = list(Transfer.objects.order_by("id").values())
    assert {row["status"] for row in before} == {Status.MIGRATED}
    assert sum(bool(row["content"].get("recording")) for row in before) == 2

    old = {row["id"]: row for row in rows_of(migrate(BEFORE))}

    for row in before:
        was = old[row["id"]]
        assert (was["slug"], was["code"], was["has_recording"]) == (
            row["content"].get("slug", ""), row["content"].get("code", ""), row["content"].get("recording", False)
        )
        assert {name: was[name] for name in RENAMED} == {old_name: row[new] for old_name, new in RENAMED.items()}
        assert not {"slug", "code", "recording"} & set(was["content"])

    migrate(AFTER)
    call_command("migrate", verbosity=0)

    assert list(Transfer.objects.order_by("id").values()) == before
    out = io.StringIO()
    call_command("seed", "all", stdout=out)
    assert list(Transfer.objects.order_by("id").values("id", "content", "source_fingerprint", "status")) == [
        {name: row[name] for name in ("id", "content", "source_fingerprint", "status")} for row in before
    ]
    out = io.StringIO()
    call_command("compare", "all", stdout=out)
    assert "No differences." in out.getvalue()
