"""The world changes while the migration runs, in every order hypothesis can
find, for two kinds at once: paintings (a blob, the thumbnail) and moods (no
blob, in applyWrites of many). MongoDB edits paintings (nuke, un-nuke, slug,
code, a recording appears), moods (text, deleted, undeleted) and owners'
handles, deletes and restores documents of both, a user is
erased (account and documents), staff take paintings down and republish
them and confirm held removals, the record's shape changes (a new media
URL), seeds and live sync run, workers migrate, die mid-batch, are
overtaken when their lease runs out, brokers drop jobs, and compare
--repair runs. After every step nothing is duplicated, no record outlives
the console's knowing its painting is gone or down, no step removes more
than the tripwire allows without a confirmation, and every migrated
painting's record is what MongoDB's current document implies (or is known
stale and rewritten). Once the world settles, every painting is migrated or
skipped, no record is left without a painting or for a painting taken down,
and compare is clean.

All real: SecantusDB, the local reference PDS, images over HTTP, the
console's database (SQLite or PostgreSQL, as the suite runs). Crashes and
overtaking are injected at engine steps, the one thing patched here.
"""

import contextlib
import datetime as dt
import io
import itertools
import os
import shutil

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule, run_state_machine_as_test

from migrator import pds, source
from atproto_client import models as atproto_models

from migrator.kinds import PAINTING, KINDS
from migrator.models import Transfer, RemovalHold, SkipReason, Status
from migrator.pds.client import admin_client
from migrator.records import painting_fingerprint, record_shape, source_fields
from migrator.services import engine, lifecycle, sync
from migrator.services.compare import expected_fields, field_differences, documents_compare
from migrator.services.engine import batch as engine_batch
from migrator.services.seed import documents_seed
from tests.plugins.console import console_tables_emptied
from tests.plugins.world import World, add_user

pytestmark = [pytest.mark.pds, pytest.mark.django_db, pytest.mark.slow]

EXAMPLES = int(os.environ.get("CONVERGENCE_EXAMPLES", "6"))
STEPS = int(os.environ.get("CONVERGENCE_STEPS", "14"))
# CI runs the same examples every time (a red run names a real regression);
# CONVERGENCE_EXPLORE=1 draws new ones, with as many examples as you give it:
#   CONVERGENCE_EXPLORE=1 CONVERGENCE_EXAMPLES=300 bin/test tests/test_convergence.py
EXPLORE = os.environ.get("CONVERGENCE_EXPLORE") == "1"
EDITS = ("nuke", "unnuke", "slug", "code", "recording")
MOOD_EDITS = ("text", "delete", "undelete")
MOOD = KINDS["mood"]
BOTH = (KINDS["painting"], MOOD)
CRASH_POINTS = {
    "blob_upload": (pds.Repo, "blob_upload"),
    "apply_writes": (pds.Repo, "apply_writes"),
    "rkeys_write_back": (source, "rkeys_write_back"),
}
_numbers = itertools.count(1)


class Crash(BaseException):
    """The worker process dying: not an Exception, so nothing catches it."""


@contextlib.contextmanager
def patched(target, name, replacement):
    """``target.name`` replaced by ``replacement(the real one)`` for a ``with``
    block (pytest's MonkeyPatch, usable inside a hypothesis step)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(target, name, replacement(getattr(target, name)))
        yield


def runnable_batches():
    return list(engine.batches_for(Transfer.objects.filter(status__in=engine.RUNNABLE)))


def machine_for(world: World, settings):
    class Convergence(RuleBasedStateMachine):
        paintings = Bundle("paintings")
        moods = Bundle("moods")

        def __init__(self):
            super().__init__()
            self.refs = []
            self.handles = {name: name for name in world.users}  # user -> current handle
            self.deleted = {}  # ref -> its document when it was deleted
            self.moods_added = []
            self.moods_deleted = {}  # mood ref -> its document when it was deleted
            self.marked = self._marked()
            self.confirmed = False
            self.keys_lost = False  # MongoDB lost its write-backs, and no full seed has run since
            self.records_lost = set()  # refs whose records the PDS lost, until compare --repair runs
            self.orphaned = set()  # refs deleted from MongoDB whose records outlived a lost state table
            # A user of this example's own, whom the erasure rule may erase for good.
            self.erasable = f"er{next(_numbers)}"
            add_user(world, self.erasable)
            self.handles[self.erasable] = self.erasable

        @initialize(target=paintings, owners=st.lists(st.sampled_from(["guest", *world.users]), min_size=2, max_size=4))
        def start(self, owners):
            return multiple(*(self._add(owner) for owner in [*owners, self.erasable]))

        @initialize(target=moods, authors=st.lists(st.sampled_from(list(world.users)), min_size=1, max_size=3))
        def start_moods(self, authors):
            return multiple(*(self._add_mood(author) for author in [*authors, self.erasable]))

        def _add_mood(self, author):
            ref = world.add_document(MOOD, handle=author, mood=f"mood {next(_numbers)} 🙂")
            self.moods_added.append(ref)
            return ref

        def _add(self, owner):
            name = None if owner == "guest" else owner
            ref = world.add_painting(handle=name)
            if name and self.handles[name] != name:  # renamed: its images live under the new handle
                slug = world.paintings[ref]["slug"]
                shutil.copy(self._folder(name, handle=name) / f"{slug}.png", self._folder(name) / f"{slug}.png")
            self.refs.append(ref)
            return ref

        # --- MongoDB changes -------------------------------------------------

        @rule(target=paintings, owner=st.sampled_from(["guest", *world.users]))
        def add_painting(self, owner):
            return self._add(owner)

        @rule(ref=paintings, edit=st.sampled_from(EDITS))
        def edit_painting(self, ref, edit):
            self._edit(ref, edit)

        @rule(target=moods, author=st.sampled_from(list(world.users)))
        def add_mood(self, author):
            return self._add_mood(author)

        @rule(ref=moods, edit=st.sampled_from(MOOD_EDITS))
        def edit_mood(self, ref, edit):
            self._edit_mood(ref, edit)

        @rule(ref=moods)
        def delete_mood_document(self, ref):
            document = world.mongo.moods.find_one({"_id": world.documents[ref]["_id"]})
            if document is not None:
                world.mongo.moods.delete_one({"_id": document["_id"]})
                self.moods_deleted[ref] = document

        @rule(ref=moods)
        def restore_mood_document(self, ref):
            if self.moods_deleted.get(ref) is not None:
                world.mongo.moods.insert_one(self.moods_deleted.pop(ref))

        @rule(ref=moods)
        def take_down_mood(self, ref):
            lifecycle.transfers_unpublish(Transfer.objects.filter(kind="mood", ref=ref), actor="test:staff", reason="taken down by the test")

        @rule(ref=moods)
        def republish_mood(self, ref):
            lifecycle.transfers_republish(Transfer.objects.filter(kind="mood", ref=ref), actor="test:staff")

        @rule(ref=moods, edit=st.sampled_from(MOOD_EDITS))
        def migrate_while_a_mood_changes(self, ref, edit):
            """The edit lands, and is seeded, after the claim and before the write."""

            def edit_midway(real):
                def step(repo, works, **kwargs):
                    if works and works[0].kind is MOOD:
                        self._edit_mood(ref, edit)
                        documents_seed(actor="test:seed", kind=MOOD)
                    return real(repo, works, **kwargs)

                return step

            with patched(engine_batch, "look_up_earlier_attempts", edit_midway):
                self.migrate()

        @rule(ref=paintings)
        def delete_painting(self, ref):
            document = world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})
            if document is not None:
                world.mongo.paintings.delete_one({"_id": document["_id"]})
                self.deleted[ref] = document

        @rule(ref=paintings)
        def restore_painting(self, ref):
            if self.deleted.get(ref) is not None:  # as a backup has it, atproto.rkey and all (an erased user's: never)
                world.mongo.paintings.insert_one(self.deleted.pop(ref))

        @rule()
        def erase_user(self):
            """aesthetic.computer's "forget me": the account deleted through
            the PDS's admin API, the user's documents deleted."""
            user = world.users.pop(self.erasable, None)
            if user is None:
                return
            admin_client().com.atproto.admin.delete_account(atproto_models.ComAtprotoAdminDeleteAccount.Data(did=user.did))
            for document in world.mongo.paintings.find({"user": user.sub}):
                self.deleted[str(document["_id"])] = None  # never restored: the user is gone
            for document in world.mongo.moods.find({"user": user.sub}):
                self.moods_deleted[str(document["_id"])] = None
            world.mongo.paintings.delete_many({"user": user.sub})
            world.mongo.moods.delete_many({"user": user.sub})
            world.mongo.users.delete_one({"_id": user.sub})
            world.mongo["@handles"].delete_one({"_id": user.sub})

        @rule(user=st.sampled_from(list(world.users)))
        def rename_handle(self, user):
            old, new = self._folder(user), self._folder(user, handle=f"{user}r{next(_numbers)}")
            old.mkdir(parents=True, exist_ok=True)
            shutil.copytree(old, new, dirs_exist_ok=True)
            new = new.parent.name.removeprefix("@")
            world.mongo["@handles"].update_one({"_id": world.users[user].sub}, {"$set": {"handle": new}})
            self.handles[user] = new

        # --- A store lost, and rebuilt by the README's steps ---------------------

        @rule(store=st.sampled_from(["console database", "MongoDB write-backs", "records"]),
              refs=st.lists(st.one_of(paintings, moods), min_size=1, max_size=3, unique=True))  # fmt: skip
        def lose_a_store(self, store, refs):
            {"console database": self._lose_the_console_database, "MongoDB write-backs": self._lose_mongodb_write_backs,
             "records": lambda: self._lose_records_on_the_pds(refs)}[store]()  # fmt: skip

        def _lose_the_console_database(self):
            """A lost disk: every table of the console empty, sessions gone.
            The README's steps follow: migrate (the tables exist),
            create_anon_account (its password reset by the PDS operator)."""
            for kind in BOTH:  # nothing is left that knows these records were for deleted documents
                known = {str(document["_id"]) for document in source.kind_collection(kind).find({}, {"_id": 1})}
                self.orphaned |= set(world.records(kind)) - known
            console_tables_emptied()
            pds.account_ensure(handle=settings.ANON_HANDLE, anonymous=True)
            self.marked = self._marked()

        def _lose_mongodb_write_backs(self):
            """MongoDB restored from a backup taken before the migration."""
            for kind in BOTH:
                source.kind_collection(kind).update_many({}, {"$unset": {kind.key_document: ""}})
            for document in self.deleted.values():
                if document is not None:
                    document.pop("atproto", None)
            self.keys_lost = True

        def _lose_records_on_the_pds(self, refs):
            """The PDS restored from an older backup: these records are gone."""
            for ref in refs:
                kind = MOOD if ref in world.documents else KINDS["painting"]
                for record in world.records(kind).get(ref, []):
                    pds.repo_for(did=record.uri.split("/")[2]).record_delete(collection=kind.nsid, rkey=record.rkey)
                    self.records_lost.add(ref)

        # --- The console -----------------------------------------------------

        @rule()
        def seed(self):
            for kind in BOTH:
                documents_seed(actor="test:seed", kind=kind)
            self.keys_lost = False

        @rule()
        def live_sync(self):
            # Its jobs are never sent (no on_commit here): a broker that drops them.
            sync.live_sync(actor="test:sync")

        @rule()
        def migrate(self):
            for batch in runnable_batches():
                engine.transfers_migrate(batch, actor="test:worker")

        @rule(ref=paintings, edit=st.sampled_from(EDITS))
        def migrate_while_mongodb_changes(self, ref, edit):
            """The edit lands, and is seeded, after the claim and before the write."""

            def edit_midway(real):
                def step(works, **kwargs):
                    self._edit(ref, edit)
                    documents_seed(actor="test:seed", kind=PAINTING)
                    return real(works, **kwargs)

                return step

            with patched(engine_batch, "blobs_make", edit_midway):
                self.migrate()

        @rule(point=st.sampled_from(sorted(CRASH_POINTS)))
        def worker_dies_mid_batch(self, point):
            def crash_after(real):
                def step(*args, **kwargs):
                    real(*args, **kwargs)
                    raise Crash

                return step

            target, name = CRASH_POINTS[point]
            with patched(target, name, crash_after):
                try:
                    self.migrate()
                except Crash:
                    pass

        @rule()
        def worker_overtaken_after_its_lease(self):
            """A batch stalls past its lease: it is released, another worker
            migrates everything, then the slow one carries on."""

            def stall(real):
                def step(works, **kwargs):
                    engine.transfers_release_stale(actor="test:lease", lease=dt.timedelta(0))
                    setattr(engine_batch, "blobs_make", real)
                    try:
                        self.migrate()
                    finally:
                        setattr(engine_batch, "blobs_make", step)
                    return real(works, **kwargs)

                return step

            with patched(engine_batch, "blobs_make", stall):
                batches = runnable_batches()
                if batches:
                    engine.transfers_migrate(batches[0], actor="test:slow-worker")

        @rule()
        def leases_expire(self):
            engine.transfers_release_stale(actor="test:lease", lease=dt.timedelta(0))
            engine.transfers_requeue_lost(actor="test:lease", lease=dt.timedelta(0))

        @rule()
        def compare_repair(self):
            for kind in BOTH:
                documents_compare(repair=True, examples=0, kind=kind)
            self.records_lost.clear()

        @rule(ref=paintings)
        def take_down(self, ref):
            lifecycle.transfers_unpublish(Transfer.objects.filter(kind="painting", ref=ref), actor="test:staff", reason="taken down by the test")

        @rule(ref=paintings)
        def republish(self, ref):
            lifecycle.transfers_republish(Transfer.objects.filter(kind="painting", ref=ref), actor="test:staff")

        @rule()
        def confirm_held_removals(self):
            """A person reads the removals page and confirms what it lists."""
            for kind in BOTH:
                if lifecycle.removal_hold(kind=kind) is not None:
                    shown = [row.id for batch in lifecycle.transfers_missing(kind=kind) for row in batch]
                    lifecycle.removal_hold_confirm(digest=lifecycle.removals_digest(shown), actor="test:staff", kind=kind)
                    self.confirmed = True

        @rule()
        def change_record_shape(self):
            """A new media URL: the same files, every record's imageUrl changes."""
            base = world.base_media_url
            settings.USER_MEDIA_URL = base if settings.USER_MEDIA_URL != base else base + "/."

        @rule()
        def rewrite_stale_records(self):
            lifecycle.transfers_reshape(actor="test:staff", kind=PAINTING)
            lifecycle.transfers_reshape(actor="test:staff", kind=MOOD)

        # --- What must always hold -------------------------------------------

        @invariant()
        def records_are_unique_and_current(self, settled=False):
            records = world.records()
            known = {str(document["_id"]) for document in world.mongo.paintings.find({}, {"_id": 1})}
            for ref, found in records.items():
                # Until the console has seen the deletion (the next full seed), a record may outlive its document;
                # one whose deletion went with a lost state table stays (compare names it, a person removes it).
                assert ref in known or (ref in self.deleted and (not settled or ref in self.orphaned)), f"a record without a painting: {ref}"
                assert len(found) == 1, f"{ref} has {len(found)} records"
            for ref in self.refs:
                self._check_painting(ref, records.get(ref, []), settled=settled)
            moods = world.records(MOOD)
            known = {str(document["_id"]) for document in world.mongo.moods.find({}, {"_id": 1})}
            for ref, found in moods.items():
                assert ref in known or (ref in self.moods_deleted and (not settled or ref in self.orphaned)), f"a record without a mood: {ref}"
                assert len(found) == 1, f"mood {ref} has {len(found)} records"
            for ref in self.moods_added:
                self._check_mood(ref, moods.get(ref, []), settled=settled)

        def _check_mood(self, ref, found, *, settled=False):
            row = Transfer.objects.filter(kind="mood", ref=ref).first()
            document = world.mongo.moods.find_one({"_id": world.documents[ref]["_id"]})
            if row is not None and row.status == Status.SKIPPED and row.skip_reason in (SkipReason.GONE, SkipReason.TAKEN_DOWN, SkipReason.NUKED):
                assert not found, f"mood {ref} is skipped ({row.skip_reason}) but still published: {found}"
            if row is not None and row.unpublished_at is not None and settled:
                assert not found, f"mood {ref} is taken down by staff but still published: {found}"
            if document is None:
                return
            if ref in self.records_lost and not found:
                return  # the PDS lost it: compare --repair writes it again
            if settled and document.get("deleted") is True:
                assert not found, f"mood {ref} is deleted in MongoDB but still published: {found}"
            mongo_rkey = (document.get("atproto") or {}).get("rkey")
            if mongo_rkey:
                assert found and found[0].rkey == mongo_rkey, f"mood {ref}: MongoDB has atproto.rkey {mongo_rkey}, the PDS {found}"
            if row is None or row.status != Status.MIGRATED or (self.keys_lost and not mongo_rkey):
                return
            assert found, f"mood {ref} is migrated but has no record"
            record = found[0]
            assert (row.rkey, mongo_rkey) == (record.rkey, record.rkey), f"mood {ref}: state {row.rkey}, MongoDB {mongo_rkey}, record {record.rkey}"
            fields = MOOD.read(document)
            current = MOOD.fingerprint({**MOOD.row_values(fields), "when": fields.when, "nuked": fields.nuked, "owner": fields.owner})
            if row.record_fingerprint != current or row.unpublished_at is not None:
                return  # stale or going down, and known to be
            assert record.value["mood"] == document["mood"] and record.value["ref"] == ref, (ref, record.value, document)

        @invariant()
        def removals_within_the_tripwire(self):
            marked = self._marked()
            if not self.confirmed:  # the tripwire bounds each kind's removals (a step may seed both kinds)
                for kind in BOTH:
                    newly = len({row for row in marked - self.marked if row[0] == kind.name})
                    assert newly <= lifecycle.removal_bound(0), f"{newly} {kind.plural} marked gone in one step, over the tripwire"
            self.marked, self.confirmed = marked, False

        def _marked(self):
            return set(Transfer.objects.exclude(gone_since=None).values_list("kind", "id"))

        def _edit_mood(self, ref, edit):
            document = world.mongo.moods.find_one({"_id": world.documents[ref]["_id"]})
            if document is None:
                return
            change = {"text": {"mood": f"edited {next(_numbers)} ✨"}, "delete": {"deleted": True}, "undelete": {"deleted": False}}[edit]
            world.mongo.moods.update_one({"_id": document["_id"]}, {"$set": change})

        def _check_painting(self, ref, found, *, settled=False):
            row = Transfer.objects.filter(kind="painting", ref=ref).first()
            document = world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})
            if row is not None and row.status == Status.SKIPPED and row.skip_reason in (SkipReason.GONE, SkipReason.TAKEN_DOWN):
                assert not found, f"{ref} is skipped ({row.skip_reason}) but still published: {found}"
            if row is not None and row.unpublished_at is not None and settled:
                assert not found, f"{ref} is taken down by staff but still published: {found}"
            if document is None:
                return
            if ref in self.records_lost and not found:
                return  # the PDS lost it: compare --repair writes it again
            mongo_rkey = (document.get("atproto") or {}).get("rkey")
            if mongo_rkey:
                assert found and found[0].rkey == mongo_rkey, f"{ref}: MongoDB has atproto.rkey {mongo_rkey}, the PDS {found}"
            if row is not None and row.status == Status.SKIPPED and row.skip_reason == SkipReason.NUKED:
                assert not found, f"{ref} is skipped as nuked but still published: {found}"
            if row is None or row.status != Status.MIGRATED or (self.keys_lost and not mongo_rkey):
                return
            assert found, f"{ref} is migrated but has no record"
            record = found[0]
            assert (row.rkey, mongo_rkey) == (record.rkey, record.rkey), f"{ref}: state {row.rkey}, MongoDB {mongo_rkey}, record {record.rkey}"
            fields = source_fields(document)
            handle = self._handle_of(fields.owner)
            current = painting_fingerprint(
                slug=fields.slug, code=fields.code, when=fields.when, nuked=fields.nuked, owner=fields.owner, owner_handle=handle
            )
            if row.record_fingerprint != current or row.record_shape != record_shape() or row.unpublished_at is not None:
                return  # stale or going down, and known to be: the next seed or run deals with it
            expected, complete = expected_fields(fields, handle, has_recording=row.has_recording, kind=PAINTING)
            assert complete
            assert field_differences(record.value, expected, complete=True, kind=PAINTING) == [], ref

        def _handle_of(self, owner):
            if not owner:
                return ""
            entry = world.mongo["@handles"].find_one({"_id": owner})
            return entry["handle"] if entry else ""

        # --- Settling ----------------------------------------------------------

        def teardown(self):
            try:
                self._settle()
            finally:
                self._forget()

        def _settle(self):
            lifecycle.transfers_reshape(actor="test:staff", kind=PAINTING)  # a person confirms the rewrite
            if self.records_lost:  # the verification names them; a person runs compare --repair
                self.compare_repair()
            for _ in range(6):
                self.seed()
                self.confirm_held_removals()  # and what the tripwire held, once a seed has held it
                engine.transfers_release_stale(actor="test:lease", lease=dt.timedelta(0))
                engine.transfers_requeue_lost(actor="test:lease", lease=dt.timedelta(0))
                if not runnable_batches():
                    break
                self.migrate()
            rows = Transfer.objects.filter(ref__in=self.refs + self.moods_added)
            unsettled = {ref: status for ref, status in rows.values_list("ref", "status") if status not in (Status.MIGRATED, Status.SKIPPED)}
            assert not unsettled, f"not settled: {unsettled}"
            self.records_are_unique_and_current(settled=True)
            for kind in BOTH:
                report = documents_compare(examples=None, kind=kind)
                differences = [difference.as_dict() for found in report.examples.values() for difference in found]
                orphans = {d["ref"] for d in differences if d["kind"] == "orphan_record"}
                assert orphans <= self.orphaned and report.total == len(orphans), (kind.name, differences)

        def _forget(self):
            """Leave the shared accounts empty for the next example."""
            settings.USER_MEDIA_URL = world.base_media_url
            for kind in BOTH:
                for ref, found in world.records(kind).items():
                    for record in found:
                        repo = pds.repo_for(did=record.uri.split("/")[2])
                        repo.record_delete(collection=kind.nsid, rkey=record.rkey)
            world.mongo.paintings.delete_many({})
            world.mongo.moods.delete_many({})
            world.paintings.clear()
            world.documents.clear()
            for name, user in world.users.items():
                world.mongo["@handles"].update_one({"_id": user.sub}, {"$set": {"handle": name}})
            Transfer.objects.all().delete()
            RemovalHold.objects.all().delete()
            world.users.pop(self.erasable, None)

        # --- Helpers -------------------------------------------------------------

        def _edit(self, ref, edit):
            document = world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})
            if document is None:  # deleted: nothing to edit
                return
            owner_name = next((name for name, user in world.users.items() if user.sub == document.get("user")), None)
            if edit in ("nuke", "unnuke"):
                world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": {"nuked": edit == "nuke"}})
            elif edit == "code":
                world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": {"code": f"e{next(_numbers)}"}})
            elif edit == "slug":
                number = next(_numbers)
                new_slug = f"2025.1.{number // 3600 % 28 + 1}.0.{number // 60 % 60}.{number % 60:02d}.000"
                folder = self._folder(owner_name)
                shutil.copy(folder / f"{document['slug'].split(':')[0]}.png", folder / f"{new_slug}.png")
                world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": {"slug": new_slug}})
            elif owner_name is None:  # a guest's recording: MongoDB names it in the slug
                image_slug = document["slug"].split(":")[0]
                world.mongo.paintings.update_one({"_id": document["_id"]}, {"$set": {"slug": f"{image_slug}:2025.2.2.0.0.00.{next(_numbers) % 1000:03d}"}})
            else:  # a user's recording appears on storage, which MongoDB does not know about
                (self._folder(owner_name) / f"{document['slug']}.zip").write_bytes(b"PK\x05\x06" + bytes(18))

        def _folder(self, owner_name, *, handle=None):
            """Where a guest's images, or a user's under ``handle`` (default: current), are served from."""
            if owner_name is None:
                return world.images / "guest"
            return world.images / "media" / f"@{handle or self.handles[owner_name]}" / "painting"

    return Convergence


@pytest.fixture
def small_world(world, settings, tmp_path):
    """The world the machine runs in: a tripwire that bites, and the
    lexicons published by an account of this test's own."""
    settings.REMOVAL_TRIPWIRE_MIN, settings.REMOVAL_TRIPWIRE_PERCENT = 1, 0.0  # a small world: the tripwire must bite
    shutil.copytree(settings.LEXICON_DIR, tmp_path / "lexicons")
    settings.LEXICON_DIR, settings.LEXICON_ACCOUNT_HANDLE, settings.LEXICON_ACCOUNT_PASSWORD = tmp_path / "lexicons", f"lexicon{next(_numbers)}x.test", ""
    call_command("deploy_lexicon", stdout=io.StringIO())
    world.base_media_url = settings.USER_MEDIA_URL
    return world


@pytest.mark.parametrize("nuked_paintings", ["skip", "flag"])
def test_the_pds_converges_to_mongodb_whatever_happens_meanwhile(small_world, settings, nuked_paintings):
    settings.NUKED_PAINTINGS = nuked_paintings
    run_state_machine_as_test(
        machine_for(small_world, settings),
        settings=hypothesis_settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None, derandomize=not EXPLORE,
            suppress_health_check=list(HealthCheck),
        ),  # fmt: skip
    )


@pytest.mark.parametrize("store", ["console database", "MongoDB write-backs", "records"])
def test_a_store_lost_in_the_middle_of_a_run_converges(small_world, settings, store):
    """The same machine and invariants, one sequence each CI run is sure to
    take (the drawn examples may not lose every store): a deletion the
    console has not seen, an edit, a worker that dies after writing, then
    the loss, more edits, and the console going on."""
    machine = machine_for(small_world, settings)()
    users = [name for name in small_world.users if name != machine.erasable]
    paintings = [machine._add(owner) for owner in ("guest", *users, machine.erasable)]
    moods = [machine._add_mood(author) for author in users]

    def step(rule, *args):
        getattr(machine, rule)(*args)
        machine.records_are_unique_and_current()
        machine.removals_within_the_tripwire()

    step("seed")
    step("migrate")
    assert Transfer.objects.filter(status=Status.MIGRATED).count() == len(paintings) + len(moods)
    step("delete_painting", paintings[0])
    step("edit_painting", paintings[1], "code")
    step("worker_dies_mid_batch", "apply_writes")
    step("lose_a_store", store, [paintings[1], paintings[2], moods[0]])
    step("edit_mood", moods[1], "text")
    step("edit_painting", paintings[2], "slug")
    step("live_sync")
    step("migrate")
    machine.teardown()
