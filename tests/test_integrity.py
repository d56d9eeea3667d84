"""MongoDB changes while paintings are in flight, claims that run out, and
rows whose data cannot be trusted: the record always converges to MongoDB's
current document, and a worker only finishes what it still holds.

The world is real (SecantusDB, the local PDS, images over HTTP). Where an
edit must land at one exact moment of a batch, the test makes it from a
wrapper around one engine step: that is the only thing patched here.
"""

import datetime as dt
import shutil
import time

import pytest
from django.utils import timezone

from migrator.models import ErrorKind, Transfer, TransferEvent, SkipReason, Status
from migrator.services import engine
from migrator.services.compare import documents_compare
from migrator.services.engine import batch as engine_batch
from migrator.services.engine import finish as engine_finish
from migrator.services.engine.work import Outcome
from migrator.services.engine.claims import Lease, claimant_gone, claimant_new, claimant_parse, this_machine
from migrator.records import painting_fingerprint
from migrator.services.seed import documents_seed
from migrator.services.state import transfers_transition
from migrator.kinds import PAINTING
from tests.plugins.world import add_user
from tests.test_engine import migrate_all, names

pytestmark = [pytest.mark.pds, pytest.mark.django_db]


def edit_during_thumbnails(monkeypatch, change):
    """Run ``change()`` (a MongoDB edit and a seed) while the batch makes its
    thumbnails: after the claim, before the record is written."""
    real = engine_batch.blobs_make

    def edited_meanwhile(works, **kwargs):
        change()
        return real(works, **kwargs)

    monkeypatch.setattr(engine_batch, "blobs_make", edited_meanwhile)


def the_record(world, ref):
    (record,) = world.records()[ref]
    return record.value


def copy_image(world, handle, old_slug, new_slug, *, new_handle=None):
    folder = world.images / "media" / f"@{handle}" / "painting"
    target = world.images / "media" / f"@{new_handle or handle}" / "painting"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / f"{old_slug}.png", target / f"{new_slug}.png")


@pytest.mark.parametrize(
    "edit",
    [
        {"nuked": True},
        {"slug": "2024.1.1.23.59.59.999"},
        {"code": "zz9"},
        {"when": dt.datetime(2024, 2, 2, 12, 0, tzinfo=dt.UTC)},
    ],
    ids=["nuked", "slug", "code", "when"],
)
def test_an_edit_that_lands_mid_batch_is_rewritten(world, monkeypatch, edit):
    ann = names(world)[0]
    ref = world.add_painting(handle=ann)
    document = world.paintings[ref]
    if "slug" in edit:
        copy_image(world, ann, document["slug"], edit["slug"])

    def change():
        world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": edit})
        documents_seed(actor="test", kind=PAINTING)

    edit_during_thumbnails(monkeypatch, change)
    first = migrate_all()
    monkeypatch.undo()

    row = Transfer.objects.get(ref=ref)
    assert (first.migrated, first.changed, row.status) == (0, 1, Status.PENDING)
    assert row.events.filter(message__contains="MongoDB changed while it was being migrated").exists()
    rkey = row.rkey

    migrate_all()

    row.refresh_from_db()
    value = the_record(world, ref)
    current = world.mongo.paintings.find_one({"_id": document["_id"]})
    assert row.status == Status.MIGRATED and row.rkey == rkey  # rewritten under the same key
    assert (value["slug"], value["code"], value["nuked"]) == (current["slug"], current["code"], current.get("nuked", False))
    assert value["imageUrl"].endswith(f"/@{ann}/painting/{current['slug']}.png")
    assert documents_compare(kind=PAINTING).clean


def test_a_nuke_that_lands_mid_batch_unpublishes_under_skip(world, monkeypatch, settings):
    """The privacy case: under NUKED_PAINTINGS=skip a painting nuked while
    it was being migrated must not stay published."""
    settings.NUKED_PAINTINGS = "skip"
    ref = world.add_painting(handle=names(world)[0])
    document = world.paintings[ref]

    def change():
        world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": {"nuked": True}})
        documents_seed(actor="test", kind=PAINTING)

    edit_during_thumbnails(monkeypatch, change)
    migrate_all()
    monkeypatch.undo()
    migrate_all()

    assert world.records()[ref] == []
    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.NUKED, "")
    assert "atproto" not in world.mongo.paintings.find_one({"_id": document["_id"]})


def test_a_painting_nuked_after_an_attempt_died_midway_is_unpublished(world, monkeypatch, settings):
    """Found by test_convergence: a worker dies after writing the record and
    before MongoDB learns its key; the painting is nuked and seeded while
    pending. Its record, which no row knows of, must still go."""
    from migrator import source

    settings.NUKED_PAINTINGS = "skip"
    ref = world.add_painting(handle=names(world)[0])
    document = world.paintings[ref]

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # the process dying: nothing in the engine catches it

    monkeypatch.setattr(source, "rkeys_write_back", dies)
    with pytest.raises(KeyboardInterrupt):
        migrate_all()
    monkeypatch.undo()
    assert len(world.records()[ref]) == 1
    engine.transfers_release_stale(actor="test", lease=dt.timedelta(0))
    world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": {"nuked": True}})
    documents_seed(actor="test", kind=PAINTING)

    migrate_all()

    assert world.records()[ref] == []
    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.NUKED, "")
    assert "Removed record" in row.skip_detail
    assert documents_compare(kind=PAINTING).clean


def test_a_record_left_stale_by_a_race_is_caught_by_any_later_seed(world):
    """The other order: a seed read the row while it ran, the engine
    finished, then the seed wrote the new fields, leaving a migrated row
    whose record was written from older fields. Even an incremental seed
    that reads no document at all puts it back to pending."""
    ref = world.add_painting(handle=names(world)[0])
    migrate_all()
    world.mongo.paintings.update_one({"_id": world.paintings[ref]["_id"]}, {"$set": {"code": "late1"}})
    row = Transfer.objects.get(ref=ref)
    fingerprint = painting_fingerprint(slug=row.content["slug"], code="late1", when=row.when, nuked=row.nuked, owner=row.owner, owner_handle=row.owner_handle)
    Transfer.objects.filter(pk=row.pk).update(content={**row.content, "code": "late1"}, source_fingerprint=fingerprint)  # what the late seed wrote

    documents_seed(actor="test", after_ref=ref, kind=PAINTING)  # live sync's minute: nothing new in MongoDB

    assert Transfer.objects.get(ref=ref).status == Status.PENDING
    migrate_all()
    assert the_record(world, ref)["code"] == "late1"
    assert documents_compare(kind=PAINTING).clean


def test_a_handle_change_rewrites_the_record(world):
    ann = names(world)[0]
    ref = world.add_painting(handle=ann)
    migrate_all()
    document = world.paintings[ref]
    owner = world.users[ann].sub
    copy_image(world, ann, document["slug"], document["slug"], new_handle="renamed")
    world.mongo["@handles"].update_one({"_id": owner}, {"$set": {"handle": "renamed"}})

    migrate_all()

    value = the_record(world, ref)
    assert value["imageUrl"].endswith(f"/@renamed/painting/{document['slug']}.png")
    assert Transfer.objects.get(ref=ref).status == Status.MIGRATED
    assert documents_compare(kind=PAINTING).clean


def test_a_recording_found_on_storage_survives_a_reseed_and_compare_stays_clean(world):
    ann = names(world)[0]
    ref = world.add_painting(handle=ann)
    slug = world.paintings[ref]["slug"]
    (world.images / "media" / f"@{ann}" / "painting" / f"{slug}.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    migrate_all()

    documents_seed(actor="test", kind=PAINTING)  # what live sync does every minute
    report = documents_compare(repair=True, kind=PAINTING)

    assert report.clean
    assert "recordingUrl" in the_record(world, ref)
    assert Transfer.objects.get(ref=ref).has_recording


def test_a_worker_only_finishes_paintings_it_still_holds(world, monkeypatch):
    """A slow batch whose claim ran out: another worker holds the painting
    now. The slow worker's late failure must not touch it."""
    ref = world.add_painting(handle=names(world)[0])
    documents_seed(actor="test", kind=PAINTING)
    row_id = Transfer.objects.get(ref=ref).pk
    other = "elsewhere:4242/otherboot-1#0f0f"

    def stalls_then_fails(works, **kwargs):
        # While this batch stalls, its lease runs out and another worker claims the painting.
        Transfer.objects.filter(pk=row_id).update(claimed_at=timezone.now() - dt.timedelta(hours=1))
        assert engine.transfers_release_stale(actor="test") == 1
        transfers_transition(Transfer.objects.filter(pk=row_id), from_statuses=[Status.PENDING], to=Status.RUNNING, actor="other", claimed_by=other, claimed_at=timezone.now())
        for work in works:  # the image fetch timed out, at last
            engine_finish.finish(work.row, Outcome("timed out", kind=ErrorKind.TRANSIENT), actor="worker:slow", result=kwargs["result"])
        return []

    monkeypatch.setattr(engine_batch, "blobs_make", stalls_then_fails)
    slow = engine.transfers_migrate([row_id], actor="worker:slow")
    monkeypatch.undo()

    row = Transfer.objects.get(pk=row_id)
    assert (row.status, row.claimed_by, row.last_error) == (Status.RUNNING, other, "")
    assert (slow.lost, sum(slow.failed.values())) == (1, 0)
    assert row.events.filter(message__contains="lost its claim").exists()


@pytest.mark.django_db(transaction=True)  # the lease's thread has its own connection: it must see committed rows
def test_a_lease_is_renewed_while_the_batch_works(world, settings):
    settings.MIGRATION_LEASE_SECONDS = 3
    ref = world.add_painting()
    documents_seed(actor="test", kind=PAINTING)
    holder = claimant_new()
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Transfer.objects.filter(ref=ref).update(status=Status.RUNNING, claimed_by=holder, claimed_at=long_ago)

    with Lease(holder, interval=0.1):
        deadline = timezone.now() + dt.timedelta(seconds=5)
        while Transfer.objects.get(ref=ref).claimed_at == long_ago and timezone.now() < deadline:
            time.sleep(0.05)
        assert engine.transfers_release_stale(actor="test") == 0

    assert Transfer.objects.get(ref=ref).status == Status.RUNNING


def test_claims_of_other_pid_namespaces_are_never_taken_for_dead():
    here = claimant_parse(claimant_new())
    assert here.machine == this_machine()
    dead_pid = 2**22 + 17  # above pid_max's default: no such process
    assert claimant_gone(f"{here.host}:{dead_pid}/{here.machine}#00aa")
    # The same hostname and pid, in a container's namespace (or another boot): alive as far as we can tell.
    boot, namespace = here.machine.rsplit("-", 1)
    assert not claimant_gone(f"{here.host}:{dead_pid}/{boot}-{int(namespace) + 1}#00aa")
    assert not claimant_gone(f"{here.host}:{dead_pid}")  # the old format: only its lease can release it


def test_rows_seeded_before_the_checks_spare_their_neighbours(world):
    """A row already pending with a date no record key holds (seeded by an
    earlier version, or edited in the table): it alone is skipped."""
    ann = names(world)[0]
    bad, good = world.add_painting(handle=ann), world.add_painting(handle=ann)
    documents_seed(actor="test", kind=PAINTING)
    Transfer.objects.filter(ref=bad).update(when=dt.datetime(3000, 1, 1, tzinfo=dt.UTC))

    result = engine.transfers_migrate(Transfer.objects.values_list("id", flat=True), actor="test")

    assert result.migrated == 1 and result.skipped == {SkipReason.BAD_WHEN: 1}
    row = Transfer.objects.get(ref=bad)
    assert "3000-01-01, outside the dates a record key can hold" in row.skip_detail
    assert Transfer.objects.get(ref=good).status == Status.MIGRATED


def test_hostile_documents_end_skipped_and_the_run_goes_on(world):
    ann = names(world)[0]
    good = world.add_painting(handle=ann)
    hostile = [
        world.add_painting(handle=ann, when=dt.datetime(1969, 12, 31, tzinfo=dt.UTC)),
        world.add_painting(handle=ann, when=dt.datetime(3000, 1, 1, tzinfo=dt.UTC)),
        world.add_painting(user=12345),
        world.add_painting(nuked="yes"),
    ]
    result = migrate_all()
    assert result.failed == {}
    assert Transfer.objects.get(ref=good).status == Status.MIGRATED
    for ref in hostile:
        row = Transfer.objects.get(ref=ref)
        assert row.status == Status.SKIPPED and row.skip_detail, ref
        assert world.records()[ref] == []
    assert world.records().keys() == {good}


def test_a_user_without_a_did_whose_login_fails_is_an_incomplete_account(world):
    world.mongo.users.insert_one({"_id": "auth0|half", "atproto": {"handle": "never-created.test", "password": "whatever-it-was"}})
    world.mongo["@handles"].insert_one({"_id": "auth0|half", "handle": "half"})
    ref = world.add_painting(user="auth0|half")

    result = migrate_all()

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.INCOMPLETE_ACCOUNT)
    assert "users.atproto has no did" in row.skip_detail and "whatever-it-was" not in row.skip_detail
    assert result.failed == {} and row.attempts == 1


def test_a_user_without_a_did_who_can_log_in_keeps_the_learned_did(world):
    """users.atproto lacks a did, but the handle and password work: the
    engine learns the DID, and no re-seed makes the account disappear."""
    add_user(world, "nodid")
    account = world.users["nodid"]
    world.mongo.users.update_one({"_id": account.sub}, {"$unset": {"atproto.did": ""}})
    ref = world.add_painting(handle="nodid")
    migrate_all()

    documents_seed(actor="test", kind=PAINTING)

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.account_did) == (Status.MIGRATED, account.did)
    assert documents_compare(kind=PAINTING).clean
    assert documents_compare(handle="@nodid", kind=PAINTING).clean


def test_a_painting_deleted_from_mongodb_mid_batch_leaves_no_record(world, monkeypatch):
    ann = names(world)[0]
    kept, deleted = world.add_painting(handle=ann), world.add_painting(handle=ann)

    def change():
        world.mongo.paintings.delete_one({"_id": world.paintings[deleted]["_id"]})

    edit_during_thumbnails(monkeypatch, change)
    migrate_all()

    assert world.records().keys() == {kept}
    row = Transfer.objects.get(ref=deleted)
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.GONE, "")
    assert Transfer.objects.get(ref=kept).status == Status.MIGRATED


@pytest.mark.parametrize("deleted_of", [0, 1], ids=["first account", "second account"])
def test_a_painting_deleted_mid_batch_loses_its_record_in_its_own_account(world, monkeypatch, deleted_of):
    """A batch settles its accounts' records together, after all of them are
    written: a document MongoDB lost meanwhile has its new record removed
    from its own account's repository, whichever account of the batch it is."""
    refs = [world.add_painting(handle=handle) for handle in names(world)[:2]]
    deleted, kept = refs[deleted_of], refs[1 - deleted_of]
    edit_during_thumbnails(monkeypatch, lambda: world.mongo.paintings.delete_one({"_id": world.paintings[deleted]["_id"]}))

    migrate_all()

    claims = TransferEvent.objects.filter(message__startswith="Claimed by").values_list("message", flat=True)
    assert len(claims) == 2 and len(set(claims)) == 1  # one batch
    assert world.records().keys() == {kept}
    row = Transfer.objects.get(ref=deleted)
    assert (row.status, row.skip_reason, row.rkey) == (Status.SKIPPED, SkipReason.GONE, "")
    assert Transfer.objects.get(ref=kept).status == Status.MIGRATED


def test_compare_repair_never_undoes_what_a_worker_did_meanwhile(world, monkeypatch, settings):
    """compare --repair judged a painting without a record; before its fix
    ran, a worker migrated it. The fix must not clear the new atproto.rkey."""
    from migrator.services.compare import judge as compare_judge

    ref = world.add_painting(handle=names(world)[0])
    migrate_all()
    row = Transfer.objects.get(ref=ref)
    repo = pds_repo(world, row.account_did)
    repo.record_delete(collection=settings.PAINTING_COLLECTION, rkey=row.rkey)
    Transfer.objects.filter(pk=row.pk).update(status=Status.FAILED, error_kind=ErrorKind.TRANSIENT, last_error="PDS down")
    real = compare_judge.Judge.differences

    def a_worker_runs_right_after_judging(judge):
        found = list(real(judge))
        engine.transfers_migrate([row.pk], actor="worker:meanwhile")
        return iter(found)

    monkeypatch.setattr(compare_judge.Judge, "differences", a_worker_runs_right_after_judging)
    report = documents_compare(repair=True, kind=PAINTING)
    monkeypatch.undo()

    assert report.repair_failures and not report.repaired
    row.refresh_from_db()
    assert row.status == Status.MIGRATED
    assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})["atproto"]["rkey"] == row.rkey
    assert len(world.records()[ref]) == 1
    assert documents_compare(kind=PAINTING).clean


def pds_repo(world, did):
    from migrator import pds

    account = next(user for user in world.users.values() if user.did == did)
    return pds.repo_for(did=did, password=account.password)


def test_a_missing_image_can_be_rechecked_from_the_dashboard_once_the_cdn_has_it(world, client, runner, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from migrator.sample import ImageJob, render_image

    ann = names(world)[0]
    ref = world.add_painting(handle=ann, image=False)
    migrate_all()
    assert Transfer.objects.get(ref=ref).skip_reason == SkipReason.IMAGE_MISSING
    folder = world.images / "media" / f"@{ann}" / "painting"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{world.paintings[ref]['slug']}.png").write_bytes(render_image(ImageJob("late", 64, 64, seed=3)))
    client.force_login(runner)

    board = client.get(reverse("admin:migrator_dashboard")).content.decode()
    assert "Image missing" in board and "Re-check 1" in board
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:migrator_recheck_skipped"), {"reason": SkipReason.IMAGE_MISSING})

    row = Transfer.objects.get(ref=ref)
    assert (row.status, row.skip_reason) == (Status.QUEUED, "")
    engine.transfers_migrate([row.pk], actor="worker:test")
    assert Transfer.objects.get(ref=ref).status == Status.MIGRATED
    assert len(world.records()[ref]) == 1


def test_skips_that_come_from_mongodb_are_not_rechecked(world):
    ref = world.add_painting(nuked="yes")
    documents_seed(actor="test", kind=PAINTING)
    assert engine.transfers_recheck(Transfer.objects.filter(ref=ref), actor="test") == 0
    assert Transfer.objects.get(ref=ref).skip_reason == SkipReason.BAD_NUKED


def test_a_tid_collision_fails_only_that_painting_and_leaves_the_other_record(world, settings):
    """Another painting's record already sits at this painting's key (two
    paintings in one microsecond with clock ids alike): nothing is overwritten."""
    from migrator.tid import tid_for_painting

    ann = names(world)[0]
    victim, neighbour = world.add_painting(handle=ann), world.add_painting(handle=ann)
    document = world.paintings[victim]
    rkey = tid_for_painting(when=document["when"], ref=victim)
    repo = pds_repo(world, world.users[ann].did)
    other = {"$type": settings.PAINTING_COLLECTION, "ref": "0" * 24, "slug": "1.2", "code": "zz", "when": "2024-01-01T00:00:00.000Z", "imageUrl": "http://x.test/a.png"}
    repo.record_put(collection=settings.PAINTING_COLLECTION, rkey=rkey, record=other)

    migrate_all()

    row = Transfer.objects.get(ref=victim)
    assert (row.status, row.error_kind) == (Status.FAILED, ErrorKind.PERMANENT)
    assert f"Record key {rkey} holds another painting (000000000000000000000000)" in row.last_error
    assert repo.record_get(collection=settings.PAINTING_COLLECTION, rkey=rkey).value["ref"] == "0" * 24
    assert Transfer.objects.get(ref=neighbour).status == Status.MIGRATED


def test_mongodb_failing_the_write_back_fails_the_batch_as_retryable_and_the_retry_adopts(world, monkeypatch):
    """MongoDB refusing the write-back is staged at source.rkeys_write_back
    (the test's MongoDB server cannot be stopped for one call)."""
    from pymongo.errors import AutoReconnect

    from migrator import source

    ann = names(world)[0]
    refs = [world.add_painting(handle=ann) for _ in range(2)]

    def mongodb_gone(*args, **kwargs):
        raise AutoReconnect("connection closed")

    monkeypatch.setattr(source, "rkeys_write_back", mongodb_gone)
    first = migrate_all()
    monkeypatch.undo()

    assert sum(first.failed.values()) == 2
    row = Transfer.objects.get(ref=refs[0])
    assert (row.status, row.error_kind) == (Status.FAILED, ErrorKind.TRANSIENT)
    assert "the MongoDB write-back failed (AutoReconnect); the next attempt adopts the record" in row.last_error

    second = migrate_all()

    assert (second.migrated, second.adopted) == (2, 2)
    for ref in refs:
        assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})["atproto"]["rkey"] == Transfer.objects.get(ref=ref).rkey
        assert len(world.records()[ref]) == 1


def test_the_painting_page_shows_the_record_as_the_pds_holds_it(world, client, runner):
    from django.urls import reverse

    ref = world.add_painting(handle=names(world)[0], nuked=True)
    migrate_all()
    row = Transfer.objects.get(ref=ref)
    client.force_login(runner)

    html = client.get(reverse("admin:migrator_transfer_change", args=[row.pk])).content.decode()

    value = the_record(world, ref)
    assert row.record_cid in html  # the CID the PDS gave it
    assert value["imageUrl"] in html and f"&quot;ref&quot;: &quot;{ref}&quot;" in html
    assert "&quot;nuked&quot;: true" in html
    assert "could not be read" not in html and "has no record" not in html
