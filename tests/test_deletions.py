"""Paintings deleted from MongoDB lose their records, restored ones come
back under the same key once, and a seed that would remove more than the
tripwire allows removes none until a person confirms. A MONGODB_DB that is
not the migration's database is refused before anything changes.

All real: SecantusDB, the local PDS, images over HTTP, on the suite's
database (SQLite or PostgreSQL)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.html import escape

from migrator import tasks
from migrator.models import TransferEvent, Transfer, RemovalHold, SkipReason, Status
from migrator.services import lifecycle, sync
from migrator.services.compare import documents_compare
from migrator.tid import tid_for_painting
from migrator.kinds import PAINTING
from tests.test_engine import migrate_all

pytestmark = [pytest.mark.pds, pytest.mark.django_db]


def delete(world, *refs):
    """Delete the documents, keeping them as a backup would (atproto.rkey and all)."""
    ids = [world.paintings[ref]["_id"] for ref in refs]
    world.backup = {**getattr(world, "backup", {}), **{str(document["_id"]): document for document in world.mongo.paintings.find({"_id": {"$in": ids}})}}
    world.mongo.paintings.delete_many({"_id": {"$in": ids}})


def restore(world, *refs):
    world.mongo.paintings.insert_many([world.backup[ref] for ref in refs])


def test_a_deleted_painting_loses_its_record_and_says_so(world):
    ann = list(world.users)[0]
    kept, deleted = world.add_painting(handle=ann), world.add_painting(handle=ann)
    migrate_all()
    uri = Transfer.objects.get(ref=deleted).record_uri

    delete(world, deleted)
    migrate_all()  # seed (finds the deletion), then the engine removes the record

    row = Transfer.objects.get(ref=deleted)
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.GONE, "")
    assert f"Removed record {uri}" in row.skip_detail
    assert TransferEvent.objects.filter(transfer=row, message__contains=uri).exists()
    records = world.records()
    assert deleted not in records and len(records[kept]) == 1
    assert documents_compare(kind=PAINTING).clean


def test_live_sync_finds_deletions_at_its_full_re_read(world, settings):
    ref, _ = world.add_painting(), world.add_painting()
    migrate_all()
    delete(world, ref)

    assert sync.live_sync(actor="schedule:test").full  # the first run is a full one
    ids = list(Transfer.objects.filter(status__in=[Status.QUEUED, Status.PENDING]).values_list("id", flat=True))
    assert ids == [Transfer.objects.get(ref=ref).id]
    from migrator.services import engine

    engine.transfers_migrate(ids, actor="worker:test")

    assert Transfer.objects.get(ref=ref).skip_reason == SkipReason.GONE
    assert ref not in world.records()


def test_a_restored_painting_is_migrated_again_under_the_same_key_once(world):
    ann = list(world.users)[0]
    ref, _ = world.add_painting(handle=ann), world.add_painting(handle=ann)
    migrate_all()
    rkey = Transfer.objects.get(ref=ref).rkey
    assert rkey == tid_for_painting(when=world.paintings[ref]["when"], ref=ref)
    delete(world, ref)
    migrate_all()

    assert world.backup[ref]["atproto"]["rkey"] == rkey
    restore(world, ref)  # a backup keeps atproto.rkey: it names no record now
    call_command("seed_paintings", stdout=io.StringIO())
    call_command("seed_paintings", stdout=io.StringIO())  # a second seed before any run must not take the key for a record
    migrate_all()
    migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.rkey) == (Status.MIGRATED, rkey)
    assert [record.rkey for record in world.records()[ref]] == [rkey]
    assert documents_compare(kind=PAINTING).clean


def test_a_painting_back_before_its_removal_keeps_its_record(world):
    ref, _ = world.add_painting(), world.add_painting()
    migrate_all()
    rkey = Transfer.objects.get(ref=ref).rkey
    delete(world, ref)
    call_command("seed_paintings", stdout=io.StringIO())  # marked gone, not removed yet
    assert Transfer.objects.get(ref=ref).gone_since is not None

    restore(world, ref)
    migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.rkey, row.gone_since) == (Status.MIGRATED, rkey, None)
    assert len(world.records()[ref]) == 1


def test_a_deleted_painting_that_never_had_a_record_is_skipped_at_once(world):
    tried = world.add_painting(image=False)  # skipped by an attempt: the engine makes sure
    never = world.add_painting()
    world.add_painting()
    migrate_all()
    delete(world, tried, never)
    Transfer.objects.filter(ref=never).update(status=Status.PENDING, attempts=0, rkey="")

    call_command("seed_paintings", stdout=io.StringIO())
    assert Transfer.objects.get(ref=never).skip_reason == SkipReason.GONE
    assert Transfer.objects.get(ref=tried).status == Status.PENDING
    migrate_all()

    row = Transfer.objects.get(ref=tried)
    assert (row.status, row.skip_reason, row.skip_detail) == (Status.SKIPPED, SkipReason.GONE, "MongoDB no longer has this painting; no record was written for it.")


def tripwire_world(world, settings, count=6):
    settings.REMOVAL_TRIPWIRE_MIN, settings.REMOVAL_TRIPWIRE_PERCENT = 2, 10.0
    refs = [world.add_painting() for _ in range(count)]
    migrate_all()
    return refs


def test_a_mass_deletion_is_held_for_a_person(world, settings, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.test")]
    refs = tripwire_world(world, settings)
    delete(world, *refs[:3])  # 3 of 6: more than max(2, 10%)

    out = io.StringIO()
    call_command("seed_paintings", stdout=out)
    migrate_all()

    assert "HELD: 3 paintings are gone from MongoDB" in out.getvalue()
    assert [message.subject for message in mailoutbox if "Removal held" in message.subject] == ["[painting console] Removal held: 3 paintings gone from MongoDB"]
    hold = lifecycle.removal_hold()
    assert (hold.count, hold.bound, len(hold.examples)) == (3, 2, 3)
    held = Transfer.objects.filter(ref__in=refs[:3]).order_by("ref")
    assert hold.examples == [{"ref": row.ref, "document": str(row), "status": row.status, "uri": row.record_uri} for row in held]
    assert Transfer.objects.filter(status=Status.MIGRATED).count() == 6
    assert all(len(world.records()[ref]) == 1 for ref in refs)


def test_the_hold_clears_by_itself_when_mongodb_has_the_documents_again(world, settings):
    refs = tripwire_world(world, settings)
    delete(world, *refs[:3])
    call_command("seed_paintings", stdout=io.StringIO())
    assert lifecycle.removal_hold() is not None

    restore(world, *refs[:3])
    out = io.StringIO()
    call_command("seed_paintings", stdout=out)

    assert lifecycle.removal_hold() is None
    assert RemovalHold.objects.get().cleared_how.startswith("MongoDB has the documents again")
    assert Transfer.objects.filter(status=Status.MIGRATED).count() == 6


def test_a_confirmed_hold_removes_exactly_what_was_shown(world, settings):
    refs = tripwire_world(world, settings)
    delete(world, *refs[:3])
    call_command("seed_paintings", stdout=io.StringIO())
    shown = [row.id for batch in lifecycle.transfers_missing(kind=PAINTING) for row in batch]

    delete(world, refs[3])  # one more since the page was shown: refused, nothing removed
    assert lifecycle.removal_hold_confirm(digest=lifecycle.removals_digest(shown), actor="admin:test", kind=PAINTING).changed
    assert Transfer.objects.filter(gone_since__isnull=False).count() == 0

    restore(world, refs[3])
    confirmed = lifecycle.removal_hold_confirm(digest=lifecycle.removals_digest(shown), actor="admin:test", kind=PAINTING)
    migrate_all()

    assert confirmed.removing == 3 and lifecycle.removal_hold() is None
    assert Transfer.objects.filter(skip_reason=SkipReason.GONE).count() == 3
    assert set(world.records()) == set(refs[3:])


@pytest.mark.parametrize("database", ["aesthetc", "empty-restore"])
def test_a_wrong_database_is_refused_and_changes_nothing(world, settings, database, mongo_client):
    refs = [world.add_painting() for _ in range(3)]
    migrate_all()
    before = list(Transfer.objects.order_by("id").values_list("status", "rkey", "updated_at"))
    events = TransferEvent.objects.count()
    settings.MONGODB_DB = f"test-{database}-{refs[0]}"
    if database == "empty-restore":  # a paintings collection, none of ours
        mongo_client[settings.MONGODB_DB].paintings.insert_one({"slug": "x"})

    for command in ("seed_paintings", "backfill_paintings", "compare_paintings"):
        with pytest.raises(CommandError) as refused:
            call_command(command, stdout=io.StringIO())
        assert refused.value.returncode == 2
        assert repr(settings.MONGODB_DB) in str(refused.value) and "MONGODB_DB" in str(refused.value)
    assert "refused" in tasks.live_sync()
    from migrator.services import engine

    assert engine.transfers_migrate(list(Transfer.objects.values_list("id", flat=True)), actor="worker:test").total == 0

    assert list(Transfer.objects.order_by("id").values_list("status", "rkey", "updated_at")) == before
    assert TransferEvent.objects.count() == events
    mongo_client.drop_database(settings.MONGODB_DB)


def test_a_hold_is_said_by_the_dashboard_migration_status_and_check(world, settings, client, runner):
    from django.core import checks
    from django.urls import reverse

    refs = tripwire_world(world, settings)
    delete(world, *refs[:3])
    call_command("seed_paintings", stdout=io.StringIO())

    report = io.StringIO()
    call_command("migration_status", stdout=report)
    assert "**Removals held:** a seed found 3 of 6 paintings gone" in report.getvalue()
    assert any(message.id == "migrator.W201" for message in checks.run_checks())
    client.force_login(runner)
    dashboard = client.get(reverse("admin:migrator_dashboard")).content.decode()
    assert 'id="removal-hold"' in dashboard and "3 of 6 paintings gone" in dashboard
    held = dashboard.split('id="removal-hold"', 1)[1].split("</div>", 1)[0]
    assert all(escape(str(row)) in held for row in Transfer.objects.filter(ref__in=refs[:3]))  # the examples, by name
    page = client.get(reverse("admin:migrator_removals"))
    assert page.context["count"] == 3 and b"Remove the records of these 3 paintings" in page.content

    client.post(reverse("admin:migrator_removals"), {"digest": page.context["digest"]})

    assert lifecycle.removal_hold() is None
    assert not any(message.id == "migrator.W201" for message in checks.run_checks())
    assert set(world.records()) == set(refs[3:])


def test_while_removals_are_held_paintings_mongodb_lacks_are_neither_migrated_nor_skipped(world, settings):
    refs = tripwire_world(world, settings)
    pending = [world.add_painting() for _ in range(2)]  # seeded, not migrated yet
    call_command("seed_paintings", stdout=io.StringIO())
    delete(world, *refs[:3], *pending)  # a bad restore loses them
    call_command("seed_paintings", stdout=io.StringIO())
    assert lifecycle.removal_hold() is not None

    migrate_all()

    for ref in pending:
        assert Transfer.objects.get(ref=ref).status == Status.PENDING
    assert not set(pending) & set(world.records())
    restore(world, *refs[:3], *pending)
    migrate_all()
    assert lifecycle.removal_hold() is None
    assert Transfer.objects.filter(status=Status.MIGRATED).count() == 8


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_missing_documents_are_found_by_one_ordered_pass_whatever_the_batches(mongo_db, monkeypatch, batch_size):
    """The rows, in the order of their refs, merged with MongoDB's ids read
    once in the same order: every deleted document is found, at the first,
    last and batch-edge places alike, and no batch asks MongoDB for its refs
    (an ``$in`` per batch scans the collection on a server without the
    ``_id`` index); documents the table does not know yet are passed over,
    and a ref that is not an ObjectId is never missing."""
    import random

    from bson import ObjectId

    ids = sorted(ObjectId() for _ in range(25))
    mongo_db.paintings.insert_many([{"_id": one, "slug": f"2024.1.1.0.0.{n:02d}.000", "code": f"c{n}"} for n, one in enumerate(ids)])
    unseeded = set(ids[7:11]) | {ids[20]}  # inserted since the last seed: no rows
    rows = [str(one) for one in ids if one not in unseeded] + ["guest-1"]
    random.Random(3).shuffle(rows)  # the table's ids in another order than the refs
    Transfer.objects.bulk_create(Transfer(kind="painting", ref=ref) for ref in rows)
    gone = [ids[0], ids[3], ids[4], ids[12], ids[24]]
    mongo_db.paintings.delete_many({"_id": {"$in": gone}})
    asked = refs_present_asked(monkeypatch)

    missing = [row.ref for batch in lifecycle.transfers_missing(batch_size=batch_size, kind=PAINTING) for row in batch]

    assert sorted(missing) == sorted(str(one) for one in gone)
    assert [ref for refs in asked for ref in refs] == ["guest-1"]  # the one ref that is not as MongoDB's ids are read, asked for by id


def refs_present_asked(monkeypatch) -> list[list[str]]:
    """The refs each question to MongoDB by id asks about from now on
    (``source.refs_present``), each still answered."""
    from migrator import source

    asked = []
    real = source.refs_present

    def spy(refs, *, kind):
        refs = list(refs)
        asked.append(refs)
        return real(refs, kind=kind)

    monkeypatch.setattr(source, "refs_present", spy)
    return asked


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_a_full_seed_finds_the_deleted_documents_as_it_reads_the_rest(mongo_db, monkeypatch, settings, batch_size):
    """A full seed reads every document in ``_id`` order, so each batch
    bounds a range of refs: a row in that range whose ref the batch lacked
    is a deleted document. Found at the first, last and batch-edge places
    alike, with no second read of MongoDB's ids, and MongoDB asked once, for
    those refs alone (a document inserted behind the read is not removed)."""
    from bson import ObjectId

    from migrator import source
    from migrator.services.seed import documents_seed

    settings.REMOVAL_TRIPWIRE_MIN = 100
    ids = sorted(ObjectId() for _ in range(25))
    mongo_db.paintings.insert_many([{"_id": one, "slug": f"2024.1.1.0.0.{n:02d}.000", "code": f"c{n}"} for n, one in enumerate(ids)])
    documents_seed(actor="test", batch_size=batch_size, kind=PAINTING)
    gone = [ids[0], ids[3], ids[4], ids[12], ids[24]]
    mongo_db.paintings.delete_many({"_id": {"$in": gone}})
    read_again = []
    asked = refs_present_asked(monkeypatch)
    monkeypatch.setattr(source, "refs_in_order", lambda **kwargs: read_again.append(kwargs) or iter(()))

    report = documents_seed(actor="test", batch_size=batch_size, kind=PAINTING)

    assert (report.gone.missing, report.gone.removing, report.gone.held) == (5, 5, False)
    expected = sorted(str(one) for one in gone)
    assert sorted(Transfer.objects.filter(skip_reason=SkipReason.GONE).values_list("ref", flat=True)) == expected
    assert [example["ref"] for example in report.gone.examples] == expected
    assert asked == [expected] and read_again == []


def test_a_row_the_seed_did_not_read_is_missing_only_if_mongodb_lacks_it(mongo_db):
    """Rows inside a range the seed read and after its last document, whose
    documents MongoDB has (inserted behind the read) or lacks."""
    from bson import ObjectId

    ids = sorted(ObjectId() for _ in range(8))
    kept = [0, 1, 3, 4, 5, 6]  # in MongoDB; 2 and 7 are not
    mongo_db.paintings.insert_many([{"_id": ids[n]} for n in kept])
    Transfer.objects.bulk_create(Transfer(kind="painting", ref=str(one)) for one in ids)
    finder = lifecycle.MissingFinder(kind=PAINTING)
    finder.read([str(ids[0]), str(ids[1])])
    finder.read([str(ids[4])])  # 3 was inserted behind the read; 2 is gone
    finder.read([str(ids[5])])  # 6 inserted after the read ended; 7 gone

    missing = Transfer.objects.filter(id__in=finder.missing_ids()).values_list("ref", flat=True)

    assert sorted(missing) == [str(ids[2]), str(ids[7])]
