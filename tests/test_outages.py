"""Outages are survived: the PDS stopped mid-run, MongoDB stopped in the
middle of the write-back, the image server answering 503 for a while.

Each server here is the test's own and is really stopped and started again
(same port, same data). Afterwards the only help is what production has:
the live-sync schedule (its retry backoff is made due by moving the failed
rows' clock back, the one thing not real: nobody waits an hour in a test)
and the jobs it queues. Every painting must end migrated or skipped, with
one record each, MongoDB knowing every key, and compare_paintings clean.
"""

import datetime as dt
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from pymongo import MongoClient

from migrator import pds, source, tasks
from migrator.models import ErrorKind, Transfer, Status
from migrator.services import engine, sync
from migrator.services.compare import documents_compare
from migrator.kinds import PAINTING
from tests.plugins.pds import RestartablePds, _point_settings_at
from tests.plugins.world import make_world
from tests.test_engine import assert_exactly_one_record_each, names

pytestmark = [pytest.mark.pds, pytest.mark.slow, pytest.mark.django_db]


def settle_by_schedule(rounds: int = 4) -> None:
    """What the schedule does over the next hours: retry what failed once
    its backoff is over, and run the jobs it queues."""
    for _ in range(rounds):
        Transfer.objects.filter(status=Status.FAILED).update(updated_at=timezone.now() - dt.timedelta(hours=2))
        sync.live_sync(actor="schedule:test")
        queued = Transfer.objects.filter(status=Status.QUEUED)
        if not queued.exists():
            return
        for batch in engine.batches_for(queued):
            tasks.batch_migrate(batch)  # what a cluster runs for each queued job


def assert_converged(world, refs) -> None:
    statuses = dict(Transfer.objects.filter(ref__in=refs).values_list("ref", "status"))
    assert set(statuses.values()) == {Status.MIGRATED}, statuses
    assert_exactly_one_record_each(world, refs)
    assert documents_compare(kind=PAINTING).clean


@pytest.fixture(scope="module")
def own_pds(tmp_path_factory):
    server = RestartablePds(tmp_path_factory.mktemp("pds-outage"))
    yield server
    if server.process.poll() is None:
        server.stop()


def test_the_pds_stopped_mid_run(own_pds, mongo_db, static_images, settings):
    _point_settings_at(own_pds.server, settings)
    world = make_world(mongo_db, static_images, settings)
    ann, bo = names(world)
    refs = [world.add_painting(handle=ann) for _ in range(3)] + [world.add_painting(handle=bo) for _ in range(3)] + [world.add_painting()]
    sync.live_sync(actor="schedule:test")
    # Batches of three: one account each, so the PDS stops between accounts.
    batches = list(engine.batches_for(Transfer.objects.filter(status=Status.QUEUED), size=3))
    assert len(batches) == 3

    tasks.batch_migrate(batches[0])
    own_pds.stop()  # down: connections refused, mid-run
    for batch in batches[1:]:
        tasks.batch_migrate(batch)

    failed = Transfer.objects.filter(status=Status.FAILED)
    assert failed.count() >= 3 and set(failed.values_list("error_kind", flat=True)) == {ErrorKind.TRANSIENT}
    assert "no response" in failed.first().last_error
    own_pds.start()  # back on the same port and data, its sessions still good
    settle_by_schedule()

    assert_converged(world, refs)
    pds.forget_sessions()


class StoppableMongo:
    """A SecantusDB of the test's own, on disk, that it can stop and start
    again on the same port and data."""

    def __init__(self, storage):
        from secantus import SecantusDBServer

        self.storage, self.server_type = storage, SecantusDBServer
        self.server = SecantusDBServer(storage_path=str(storage))
        self.server.start()
        self.port = int(self.server.uri.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        self.uri = f"mongodb://127.0.0.1:{self.port}/?serverSelectionTimeoutMS=1500&connectTimeoutMS=1500"

    def stop(self):
        self.server.stop()

    def start(self):
        self.server = self.server_type(port=self.port, storage_path=str(self.storage))
        self.server.start()


@pytest.fixture
def stoppable_mongo(tmp_path, settings):
    mongo = StoppableMongo(tmp_path / "mongo")
    settings.MONGODB_URI, settings.MONGODB_DB = mongo.uri, "outage"
    client = MongoClient(mongo.uri, tz_aware=True)
    client["outage"].create_collection("paintings")  # as aesthetic.computer's database has
    yield mongo, client["outage"]
    client.close()
    mongo.stop()


def test_mongodb_stopped_in_the_middle_of_the_write_back(pds, stoppable_mongo, static_images, settings, monkeypatch):
    """The records are written, then MongoDB goes away before it learns
    their keys: the retry adopts the records (no second record), and
    MongoDB learns the keys once it is back."""
    mongo, database = stoppable_mongo
    world = make_world(database, static_images, settings)
    ann = names(world)[0]
    refs = [world.add_painting(handle=ann) for _ in range(3)]
    sync.live_sync(actor="schedule:test")
    real = source.rkeys_write_back

    def mongodb_goes_away(*args, **kwargs):
        mongo.stop()  # for real: the server is gone when the write-back is sent
        return real(*args, **kwargs)

    monkeypatch.setattr(source, "rkeys_write_back", mongodb_goes_away)
    result = engine.transfers_migrate(list(Transfer.objects.values_list("id", flat=True)), actor="test")
    monkeypatch.undo()

    assert sum(result.failed.values()) == 3
    row = Transfer.objects.get(ref=refs[0])
    assert (row.status, row.error_kind) == (Status.FAILED, ErrorKind.TRANSIENT)
    assert "the MongoDB write-back failed" in row.last_error
    assert len(world.records()[refs[0]]) == 1  # written, and not forgotten

    mongo.start()
    settle_by_schedule()

    assert_converged(world, refs)


class FlakyImages(SimpleHTTPRequestHandler):
    """Serves the images, or 503 for everything while ``down`` is set."""

    down = threading.Event()

    def do_GET(self):
        if self.down.is_set():
            self.send_error(503, "Service Unavailable")
            return
        super().do_GET()

    def do_HEAD(self):
        if self.down.is_set():
            self.send_error(503, "Service Unavailable")
            return
        super().do_HEAD()

    def log_message(self, *args):
        pass


def test_the_image_server_answering_503_for_a_while(world, settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(FlakyImages, directory=str(world.images)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings.USER_MEDIA_URL, settings.GUEST_MEDIA_URL = f"{base}/media", f"{base}/guest"
    try:
        ann = names(world)[0]
        refs = [world.add_painting(handle=ann) for _ in range(2)] + [world.add_painting()]
        FlakyImages.down.set()
        sync.live_sync(actor="schedule:test")
        for batch in engine.batches_for(Transfer.objects.filter(status=Status.QUEUED)):
            tasks.batch_migrate(batch)

        failed = Transfer.objects.filter(ref__in=refs)
        assert set(failed.values_list("status", "error_kind")) == {(Status.FAILED, ErrorKind.TRANSIENT)}
        assert "503" in failed.first().last_error
        assert all(world.records()[ref] == [] for ref in refs)

        FlakyImages.down.clear()
        settle_by_schedule()

        assert_converged(world, refs)
    finally:
        FlakyImages.down.clear()
        server.shutdown()
        server.server_close()
