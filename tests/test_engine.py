"""The migration engine against a real PDS, a real MongoDB wire-protocol
server and real HTTP images."""

import datetime
import io

import pytest
from django.core.management import call_command

from migrator import source
from migrator.kinds import PAINTING
from migrator.models import ErrorKind, TransferEvent, Transfer, SkipReason, Status
from migrator.services import engine
from migrator.services.engine import batch as engine_batch
from migrator.services.engine import write as engine_write
from migrator.services.compare import documents_compare
from migrator.services.seed import documents_seed
from migrator.tid import tid_for_painting

pytestmark = [pytest.mark.pds, pytest.mark.django_db]


def migrate_all() -> engine.BatchResult:
    documents_seed(actor="test", kind=PAINTING)
    result = engine.BatchResult()
    for batch in engine.batches_for(Transfer.objects.filter(status__in=engine.RUNNABLE)):
        result.add(engine.transfers_migrate(batch, actor="test"))
    return result


def names(world):
    return list(world.users)


def assert_exactly_one_record_each(world, refs):
    records = world.records()
    for ref in refs:
        assert len(records[ref]) == 1, f"{ref} has {len(records[ref])} records"
        record = records[ref][0]
        row = Transfer.objects.get(ref=ref)
        assert (row.status, row.rkey, row.record_uri) == (Status.MIGRATED, record.rkey, record.uri)
        assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})["atproto"] == {"rkey": record.rkey, "uri": record.uri}


def test_it_migrates_user_and_anonymous_paintings(world):
    ann, bo = names(world)
    refs = [world.add_painting(handle=ann), world.add_painting(handle=ann), world.add_painting(handle=bo), world.add_painting()]

    result = migrate_all()

    assert result.migrated == 4
    assert_exactly_one_record_each(world, refs)
    record = world.records()[refs[0]][0]
    document = world.paintings[refs[0]]
    assert record.rkey == tid_for_painting(when=document["when"], ref=refs[0])
    assert record.value["imageUrl"].endswith(f"/media/@{ann}/painting/{document['slug']}.png")
    assert record.value["thumbnail"]["mimeType"] == "image/png"
    assert record.uri.startswith(f"at://{world.users[ann].did}/")
    assert world.records()[refs[3]][0].uri.startswith(f"at://{world.anonymous_did}/")


def test_every_step_leaves_an_event(world):
    ref = world.add_painting(handle=names(world)[0])
    migrate_all()
    messages = list(TransferEvent.objects.filter(transfer__ref=ref).order_by("at", "id").values_list("to_status", "message"))
    assert [status for status, _ in messages] == ["pending", "running", "running", "migrated"]
    assert messages[2][1].startswith("Writing record")
    assert messages[3][1].startswith("Wrote record at://")


def test_a_missing_image_skips_only_that_painting(world):
    ann = names(world)[0]
    good, missing = world.add_painting(handle=ann), world.add_painting(handle=ann, image=False)

    result = migrate_all()

    assert result.migrated == 1 and result.skipped == {SkipReason.IMAGE_MISSING: 1}
    row = Transfer.objects.get(ref=missing)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.IMAGE_MISSING)
    assert "404" in row.skip_detail
    assert_exactly_one_record_each(world, [good])


def test_an_unreadable_image_is_skipped_with_its_reason(world):
    ann = names(world)[0]
    ref = world.add_painting(handle=ann)
    document = world.paintings[ref]
    (world.images / "media" / f"@{ann}" / "painting" / f"{document['slug']}.png").write_bytes(b"<html>not an image</html>")
    migrate_all()
    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.INVALID_IMAGE)


def test_an_unreachable_pds_fails_the_paintings_as_retryable(world, settings):
    ref = world.add_painting(handle=names(world)[0])
    from migrator import pds

    pds.forget_sessions()
    settings.PDS_URL = "http://127.0.0.1:9"  # nothing listens: connection refused
    settings.PDS_RETRY_ATTEMPTS = 1
    from migrator.models import Account

    Account.objects.update(session="")  # no stored session to fall back on

    migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.error_kind) == (Status.FAILED, ErrorKind.TRANSIENT)
    assert row.last_error
    assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]}).get("atproto") is None


def test_nuked_paintings_are_migrated_with_the_flag(world):
    ref = world.add_painting(handle=names(world)[0], nuked=True)
    migrate_all()
    assert world.records()[ref][0].value["nuked"] is True


def test_guest_recordings_get_their_url(world):
    ref = world.add_painting(slug="2024.1.1.0.0.01.000:2024.1.1.0.0.00.500")
    migrate_all()
    assert world.records()[ref][0].value["recordingUrl"].endswith("/guest/2024.1.1.0.0.00.500.zip")


def test_a_user_recording_found_on_storage_gets_its_url(world):
    ann = names(world)[0]
    ref = world.add_painting(handle=ann)
    document = world.paintings[ref]
    (world.images / "media" / f"@{ann}" / "painting" / f"{document['slug']}.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    migrate_all()
    assert world.records()[ref][0].value["recordingUrl"].endswith(f"{document['slug']}.zip")
    assert Transfer.objects.get(ref=ref).has_recording
    # MongoDB knows nothing of it; the comparison trusts what the migration found.
    assert documents_compare(kind=PAINTING).clean


def test_a_second_worker_never_takes_a_claimed_painting(world):
    ref = world.add_painting(handle=names(world)[0])
    documents_seed(actor="test", kind=PAINTING)
    ids = list(Transfer.objects.values_list("id", flat=True))
    first = engine.transfers_migrate(ids, actor="worker:1")
    second = engine.transfers_migrate(ids, actor="worker:2")
    assert (first.migrated, second.total) == (1, 0)
    assert TransferEvent.objects.filter(transfer__ref=ref, to_status=Status.RUNNING, message__startswith="Claimed").count() == 1


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing in the
    engine catches it."""


@pytest.mark.parametrize("point", ["blob_upload", "apply_writes", "rkeys_write_back"])
def test_a_retry_after_a_crash_writes_no_second_record(world, monkeypatch, point):
    """Crash injection (the one thing patched here: a real crash is tested by
    test_crash.py, which kills the process): the process dies right after
    ``point`` succeeds; the next run reconciles with what the PDS holds."""
    ann, bo = names(world)
    refs = [world.add_painting(handle=ann) for _ in range(3)] + [world.add_painting(handle=bo)]
    target = {"blob_upload": "migrator.pds.Repo.blob_upload", "apply_writes": "migrator.pds.Repo.apply_writes", "rkeys_write_back": "migrator.source.rkeys_write_back"}[point]
    real = _resolve(target)

    def crash_after(*args, **kwargs):
        real(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(target, crash_after)
    with pytest.raises(Crash):
        migrate_all()
    monkeypatch.undo()
    assert Transfer.objects.filter(status=Status.RUNNING).exists()

    released = engine.transfers_release_stale(actor="test", lease=datetime.timedelta(0))
    assert released
    result = migrate_all()
    migrate_all()  # and once more: nothing left to do, nothing written twice

    assert_exactly_one_record_each(world, refs)
    if point == "apply_writes":  # records written, nothing else: the engine finds and adopts them
        assert result.adopted >= 1
    if point == "rkeys_write_back":  # MongoDB has the keys: seeding takes them over
        assert TransferEvent.objects.filter(message__startswith="MongoDB already has atproto.rkey").exists()


def _resolve(dotted: str):
    module, _, attribute = dotted.rpartition(".")
    if module.endswith("Repo"):
        from migrator.pds import Repo

        return getattr(Repo, attribute)
    return getattr(source, attribute)


def test_a_nuked_painting_gets_its_record_updated(world):
    ref = world.add_painting(handle=names(world)[0])
    migrate_all()
    rkey = world.records()[ref][0].rkey
    world.mongo.paintings.update_one({"_id": world.paintings[ref]["_id"]}, {"$set": {"nuked": True}})

    migrate_all()

    records = world.records()[ref]
    assert len(records) == 1 and records[0].rkey == rkey and records[0].value["nuked"] is True
    assert Transfer.objects.get(ref=ref).status == Status.MIGRATED


def test_under_skip_a_later_nuke_removes_the_record(world, settings):
    ref = world.add_painting(handle=names(world)[0])
    migrate_all()
    settings.NUKED_PAINTINGS = "skip"
    world.mongo.paintings.update_one({"_id": world.paintings[ref]["_id"]}, {"$set": {"nuked": True}})

    migrate_all()

    assert world.records()[ref] == []
    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.NUKED, "")
    assert "atproto" not in world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})


def test_backfill_command_runs_resumes_and_summarises(world):
    ann = names(world)[0]
    for _ in range(3):
        world.add_painting(handle=ann)
    world.add_painting()
    out = io.StringIO()
    call_command("backfill_paintings", workers=1, limit=2, stdout=out, stderr=io.StringIO())
    assert "migrated: 2" in out.getvalue()
    assert "2 paintings remain pending or failed" in out.getvalue()

    out = io.StringIO()
    call_command("backfill_paintings", workers=1, stdout=out, stderr=io.StringIO())
    assert "migrated: 2" in out.getvalue()
    assert Transfer.objects.filter(status=Status.MIGRATED).count() == 4


def test_backfill_filters_by_user_and_anonymous(world):
    ann, bo = names(world)
    world.add_painting(handle=ann), world.add_painting(handle=bo), world.add_painting()
    call_command("backfill_paintings", workers=1, user=f"@{bo}", stdout=io.StringIO(), stderr=io.StringIO())
    assert list(Transfer.objects.filter(status=Status.MIGRATED).values_list("owner_handle", flat=True)) == [bo]
    call_command("backfill_paintings", workers=1, anonymous=True, stdout=io.StringIO(), stderr=io.StringIO())
    assert Transfer.objects.filter(status=Status.MIGRATED, owner="").count() == 1


def test_dry_run_writes_nothing_anywhere(world):
    ann = names(world)[0]
    refs = [world.add_painting(handle=ann), world.add_painting()]
    documents_seed(actor="test", kind=PAINTING)
    events = TransferEvent.objects.count()
    out = io.StringIO()

    call_command("backfill_paintings", dry_run=True, stdout=out, stderr=io.StringIO())

    assert "2 paintings would be migrated, 0 skipped, 0 would fail. No changes made." in out.getvalue()
    assert TransferEvent.objects.count() == events
    assert set(Transfer.objects.values_list("status", flat=True)) == {Status.PENDING}
    assert world.records() == {}
    assert not any("atproto" in world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]}) for ref in refs)


def test_a_dry_run_reads_the_lexicon_files_once_a_chunk_as_the_batch_does(world, monkeypatch):
    from migrator.services.engine import preview

    ann, _ = names(world)
    refs = [world.add_painting(handle=ann) for _ in range(4)]
    documents_seed(actor="test", kind=PAINTING)
    loads = []
    real = preview.lexicons_load
    monkeypatch.setattr(preview, "lexicons_load", lambda *arguments: loads.append(1) or real(*arguments))

    previews = engine.transfers_preview(Transfer.objects.filter(ref__in=refs))

    assert [item.outcome for item in previews] == ["migrate"] * 4
    assert len(loads) == 1


def test_preview_shows_the_record_and_validates_it(world):
    ref = world.add_painting(handle=names(world)[0])
    documents_seed(actor="test", kind=PAINTING)
    (preview,) = engine.transfers_preview(Transfer.objects.filter(ref=ref))
    assert preview.outcome == "migrate" and preview.problems == []
    assert preview.record["ref"] == ref
    assert preview.thumbnail.width == 512
    # The CID the preview computes is the one the PDS gives the same bytes.
    migrate_all()
    assert world.records()[ref][0].value["thumbnail"]["ref"]["$link"] == preview.record["thumbnail"]["ref"]["$link"]


def test_an_unexpected_error_fails_that_accounts_paintings_and_the_batch_goes_on(world, monkeypatch):
    """Fault injection (a bug cannot be produced on demand): the engine's
    lookup step raises for one account only."""
    ann, bo = names(world)
    refs_ann = [world.add_painting(handle=ann) for _ in range(2)]
    ref_bo = world.add_painting(handle=bo)
    real = engine_batch.look_up_earlier_attempts

    def broken_for_ann(repo, works, **kwargs):
        if repo.did == world.users[ann].did:
            raise RuntimeError("a bug")
        return real(repo, works, **kwargs)

    monkeypatch.setattr(engine_batch, "look_up_earlier_attempts", broken_for_ann)
    documents_seed(actor="test", kind=PAINTING)
    result = engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="test")

    assert result.migrated == 1
    for ref in refs_ann:
        row = Transfer.objects.get(ref=ref)
        assert (row.status, row.error_kind) == (Status.FAILED, ErrorKind.TRANSIENT)
        # The type, not the text: an unexpected exception may carry a secret it was given.
        assert row.last_error == "Unexpected error: RuntimeError (the traceback is in the worker's log)."
    assert Transfer.objects.get(ref=ref_bo).status == Status.MIGRATED


def test_an_unexpected_error_after_a_chunk_was_written_fails_only_what_was_not(world, monkeypatch):
    """Fault injection (a bug cannot be produced on demand): an account's
    second applyWrites chunk raises. The first chunk's records were written,
    so they are settled with the batch (migrated, keys in MongoDB); only the
    rest fails, retryable, and the next run writes it once."""
    from migrator import pds

    ann, bo = names(world)
    refs_ann = [world.add_painting(handle=ann) for _ in range(3)]
    ref_bo = world.add_painting(handle=bo)
    monkeypatch.setattr(pds, "MAX_WRITES_PER_CALL", 2)
    real, chunks = engine_batch.chunk_write, []

    def second_chunk_breaks(repo, works, **kwargs):
        chunks.append([work.row.ref for work in works])
        if len(chunks) == 2:
            raise RuntimeError("a bug")
        return real(repo, works, **kwargs)

    monkeypatch.setattr(engine_batch, "chunk_write", second_chunk_breaks)
    documents_seed(actor="test", kind=PAINTING)
    result = engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="test")

    assert chunks[:2] == [refs_ann[:2], refs_ann[2:]] and result.migrated == 3
    assert [Transfer.objects.get(ref=ref).status for ref in refs_ann] == [Status.MIGRATED, Status.MIGRATED, Status.FAILED]
    assert Transfer.objects.get(ref=ref_bo).status == Status.MIGRATED
    assert_exactly_one_record_each(world, [*refs_ann[:2], ref_bo])
    monkeypatch.setattr(engine_batch, "chunk_write", real)
    assert migrate_all().migrated == 1
    assert_exactly_one_record_each(world, [*refs_ann, ref_bo])


def test_an_unexpected_error_settling_a_batch_fails_its_documents_and_the_next_run_adopts_their_records(world, monkeypatch):
    """Fault injection: marking the batch's written records migrated
    raises. Their documents fail, retryable, rather than stay running; the
    records exist, so the next run adopts them without writing again."""
    from migrator.services.engine import writeback

    refs = [world.add_painting(handle=handle) for handle in names(world)]

    def broken(changes, **kwargs):
        raise RuntimeError("a bug")

    with monkeypatch.context() as patched:
        patched.setattr(writeback, "transfers_transition_each", broken)
        documents_seed(actor="test", kind=PAINTING)
        engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="test")
    for ref in refs:
        row = Transfer.objects.get(ref=ref)
        assert (row.status, row.error_kind) == (Status.FAILED, ErrorKind.TRANSIENT)

    result = migrate_all()

    assert (result.migrated, result.adopted) == (2, 2)
    assert_exactly_one_record_each(world, refs)


def test_a_dry_run_on_a_console_that_never_seeded_previews_what_the_run_will_do(world):
    """The README's fifth production step, on a fresh console: the dry run
    reads MongoDB for what the real run would seed, writes nothing, and
    names the very paintings the real run then migrates."""
    guests = [world.add_painting() for _ in range(12)]
    world.add_painting(handle=names(world)[0])
    out = io.StringIO()

    call_command("backfill_paintings", anonymous=True, limit=10, dry_run=True, stdout=out, stderr=io.StringIO())

    preview = out.getvalue()
    assert "Dry run: 10 paintings would be migrated, 0 skipped, 0 would fail. No changes made." in preview
    assert not Transfer.objects.exists() and not TransferEvent.objects.exists()
    assert world.records() == {}
    previewed = {ref for ref in guests if ref in preview or world.paintings[ref]["slug"] in preview}

    call_command("backfill_paintings", anonymous=True, limit=10, workers=1, stdout=io.StringIO(), stderr=io.StringIO())

    migrated = set(Transfer.objects.filter(status=Status.MIGRATED).values_list("ref", flat=True))
    assert len(migrated) == 10 and migrated == previewed
    assert set(world.records()) == migrated


def test_a_record_written_meanwhile_makes_the_batch_fall_back_to_single_writes(world):
    """A create whose key exists (another worker wrote it since the batch
    looked) fails the whole applyWrites; each painting is then reconciled
    alone, and the batch's other paintings are not held back."""
    from migrator import pds
    from migrator.kinds import PAINTING

    ann = names(world)[0]
    refs = [world.add_painting(handle=ann) for _ in range(3)]
    documents_seed(actor="test", kind=PAINTING)
    taken = Transfer.objects.get(ref=refs[1])
    user = world.users[ann]
    repo = pds.repo_for(did=user.did, password=user.password)
    rkey = tid_for_painting(when=taken.when, ref=taken.ref)
    blob = repo.blob_upload(b"\x89PNG\r\n\x1a\n" + bytes(64), mime_type="image/png")
    repo.record_create(collection="computer.aesthetic.painting", rkey=rkey, record=PAINTING.record_from_row(taken, has_recording=False, blob=blob))

    result = migrate_all()

    assert (result.migrated, sum(result.failed.values())) == (3, 0)
    assert_exactly_one_record_each(world, refs)
    assert Transfer.objects.get(ref=refs[1]).rkey == rkey


def test_a_record_the_pds_refuses_fails_only_its_painting(world, monkeypatch):
    """applyWrites is all or nothing: a record the PDS refuses (a float,
    which the ATProto data model forbids) fails the whole call, and the
    batch is split to find the one painting at fault. The lexicon check
    would stop such a record before the PDS; the test adds the float after
    it, the only thing changed here."""
    ann = names(world)[0]
    refs = [world.add_painting(handle=ann) for _ in range(3)]
    real = engine_write.blobs_upload

    def one_bad_record(repo, works, **kwargs):
        ready = real(repo, works, **kwargs)
        for work in ready:
            if work.row.ref == refs[1]:
                work.record["weight"] = 1.5
        return ready

    monkeypatch.setattr(engine_write, "blobs_upload", one_bad_record)
    result = migrate_all()

    assert result.migrated == 2 and sum(result.failed.values()) == 1
    bad = Transfer.objects.get(ref=refs[1])
    assert (bad.status, bad.error_kind) == (Status.FAILED, ErrorKind.PERMANENT)
    assert "Writing the record failed" in bad.last_error
    assert_exactly_one_record_each(world, [refs[0], refs[2]])
    assert world.records()[refs[1]] == []


def test_a_record_that_cannot_be_removed_fails_and_a_retry_removes_it(world, settings):
    """The PDS refuses the delete (the account is deactivated, for real):
    the painting fails with the PDS's error, MongoDB keeps its key (nothing
    half done), and once the account is back a retry removes the record."""
    from atproto_client import models

    from migrator import pds

    ann = names(world)[0]
    ref = world.add_painting(handle=ann)
    migrate_all()
    settings.NUKED_PAINTINGS = "skip"
    world.mongo.paintings.update_one({"_id": world.paintings[ref]["_id"]}, {"$set": {"nuked": True}})
    user = world.users[ann]
    account = pds.repo_for(did=user.did, password=user.password).client
    account.com.atproto.server.deactivate_account(models.ComAtprotoServerDeactivateAccount.Data())

    first = migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, sum(first.failed.values())) == (Status.FAILED, 1)
    assert row.last_error.startswith(f"Removing record {row.rkey} failed") and "AccountDeactivated" in row.last_error
    assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})["atproto"]["rkey"] == row.rkey

    account.com.atproto.server.activate_account()
    engine.transfers_retry(Transfer.objects.filter(ref=ref), actor="staff:test")
    engine.transfers_migrate([row.pk], actor="test")

    assert world.records()[ref] == []
    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.NUKED)
    assert "atproto" not in world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})


def test_small_accounts_share_a_batch_and_a_large_one_fills_its_own(db):
    def add(owner, count):
        return [
            Transfer.objects.create(ref=f"{owner or 'guest'}-{index}", owner=owner, content={"slug": f"1.{index}", "code": f"{owner}{index}"[:10]}).pk
            for index in range(count)
        ]

    large, small_a, small_b = add("", 7), add("auth0|a", 2), add("auth0|b", 3)
    batches = list(engine.batches_for(Transfer.objects.all(), size=5))
    # Ordered by owner: the guest account's 7 fill a batch of 5, their last 2
    # share one with all of a's; b's 3 would not fit there, so they start the next.
    assert batches == [large[:5], large[5:] + small_a, small_b]


@pytest.mark.parametrize("open_sessions, steps", [
    (16, ["thumbnails", "thumbnails", "write", "thumbnails", "write", "write"]),  # each account's ahead of the last one's write
    (1, ["thumbnails", "write", "thumbnails", "write", "thumbnails", "write"]),  # one session kept: one account at a time
])  # fmt: skip
def test_the_next_accounts_thumbnails_are_made_while_this_account_is_written(world, monkeypatch, settings, open_sessions, steps):
    settings.PDS_OPEN_SESSIONS = open_sessions
    ann, bo = names(world)
    refs = [world.add_painting(handle=ann), world.add_painting(handle=bo), world.add_painting()]
    seen = []
    start, write = engine_batch.blobs_start, engine_batch._account_write
    monkeypatch.setattr(engine_batch, "blobs_start", lambda works: seen.append(("thumbnails", works[0].row.owner)) or start(works))
    monkeypatch.setattr(engine_batch, "_account_write", lambda repo, works, *rest, **kw: seen.append(("write", works[0].row.owner)) or write(repo, works, *rest, **kw))

    assert migrate_all().migrated == 3

    assert [step for step, _ in seen] == steps
    owners = [owner for step, owner in seen if step == "thumbnails"]
    assert sorted(owners) == sorted(Transfer.objects.get(ref=ref).owner for ref in refs)
    assert [owner for step, owner in seen if step == "write"] == owners  # written in the order they were started
    assert_exactly_one_record_each(world, refs)


def test_a_thumbnail_an_account_repeats_is_uploaded_once(world, monkeypatch):
    from migrator import pds

    ann, _ = names(world)
    refs = [world.add_painting(handle=ann) for _ in range(3)]
    image_of = {ref: world.images / "media" / f"@{ann}" / "painting" / f"{world.paintings[ref]['slug']}.png" for ref in refs}
    image_of[refs[1]].write_bytes(image_of[refs[0]].read_bytes())  # the same painting saved twice
    uploads = []
    real = pds.Repo.blob_upload
    monkeypatch.setattr(pds.Repo, "blob_upload", lambda self, content, **options: uploads.append(content) or real(self, content, **options))

    assert migrate_all().migrated == 3

    assert len(uploads) == 2 and uploads[0] != uploads[1]
    records = world.records()
    thumbnails = [records[ref][0].value["thumbnail"]["ref"]["$link"] for ref in refs]
    assert thumbnails[0] == thumbnails[1] != thumbnails[2]


def test_a_chunk_reads_the_lexicon_files_once_not_once_a_record(world, monkeypatch):
    from migrator.services.engine import blobs

    ann, _ = names(world)
    refs = [world.add_painting(handle=ann) for _ in range(4)]
    loads = []
    real = blobs.lexicons_load
    monkeypatch.setattr(blobs, "lexicons_load", lambda *arguments: loads.append(1) or real(*arguments))

    assert migrate_all().migrated == 4

    assert len(loads) == 1  # one account, one chunk
    assert_exactly_one_record_each(world, refs)
