"""GET /health, as an uptime monitor polls it: 200 when the console's
database, MongoDB, the PDS and the job cluster answer and live sync ran
recently; 503 naming what does not. Each service here is real and is
really stopped (or made to hang); nothing secret is ever in the body."""

import datetime as dt
import socket
import time

import pytest
from django.utils import timezone

from migrator.models import SyncCursor
from migrator.services import sync
from tests.plugins.pds import RestartablePds, _point_settings_at
from tests.plugins.processes import Console
from tests.test_outages import stoppable_mongo  # noqa: F401  (a fixture)
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db]
EVERYTHING = ("database", "mongodb", "pds", "cluster", "sync")


@pytest.fixture(autouse=True)
def own_cache(settings, tmp_path):
    """A cache of this test's own, where only its own cluster leaves a heartbeat."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path / "var" / "cache")}}


@pytest.fixture
def without_cluster(settings):
    settings.HEALTH_REQUIRE_CLUSTER = False


def synced(minutes_ago: float = 0) -> None:
    SyncCursor.objects.update_or_create(name=sync.CURSOR, defaults={"synced_at": timezone.now() - dt.timedelta(minutes=minutes_ago)})


def health(client) -> tuple[int, dict]:
    response = client.get("/health")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


def silent_listener() -> socket.socket:
    """A server that takes connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.pds
@pytest.mark.slow
def test_everything_answering_is_200_with_every_check_ok(mongo_db, pds, client, settings, tmp_path, console_database):
    var = tmp_path / "var"
    console = Console(settings, console_database, var, SECRET_KEY=settings.SECRET_KEY, Q_WORKERS="1")
    console.run("migrate", "-v0")
    sync.live_sync(actor="schedule:test")  # live sync, for real: it reads MongoDB and keeps its cursor
    cluster = console.start("qcluster", log=tmp_path / "qcluster.log")
    try:
        deadline = time.monotonic() + 90
        status, body = health(client)
        while body["checks"]["cluster"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.5)
            status, body = health(client)
    finally:
        console.kill(cluster)

    assert (status, body) == (200, {"status": "ok", "checks": dict.fromkeys(EVERYTHING, "ok")}), (tmp_path / "qcluster.log").read_text()[-3000:]
    assert settings.PDS_ADMIN_PASSWORD not in str(body)


@pytest.mark.pds
def test_mongodb_stopped_is_503_naming_mongodb(stoppable_mongo, pds, client, without_cluster):  # noqa: F811
    mongo, _ = stoppable_mongo
    synced()
    assert health(client)[0] == 200

    mongo.stop()
    started = time.monotonic()
    status, body = health(client)
    took = time.monotonic() - started

    assert status == 503 and body["status"] == "failing"
    assert body["failing"] == ["mongodb"]
    assert body["checks"]["mongodb"] == "did not answer (ServerSelectionTimeoutError)"
    assert took < 5
    mongo.start()
    # Back: the driver finds the server again on its next heartbeat.
    last = {}

    def back() -> bool:
        last["status"], last["body"] = health(client)
        return last["status"] == 200

    wait_for(back, timeout=60, what="/health to answer 200 once MongoDB is back", explain=lambda: f"it last said {last}")


@pytest.fixture(scope="module")
def own_pds(tmp_path_factory):
    server = RestartablePds(tmp_path_factory.mktemp("pds-health"))
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.mark.pds
@pytest.mark.slow
def test_the_pds_stopped_is_503_naming_the_pds(own_pds, mongo_db, client, settings, without_cluster):
    _point_settings_at(own_pds.server, settings)
    synced()
    assert health(client)[0] == 200

    own_pds.stop()
    try:
        status, body = health(client)
    finally:
        own_pds.start()

    assert status == 503 and body["failing"] == ["pds"]
    assert body["checks"]["pds"] == "did not answer"
    assert health(client)[0] == 200


@pytest.mark.pds
def test_a_sync_that_last_ran_too_long_ago_is_503_naming_sync(mongo_db, pds, client, settings, without_cluster):
    settings.HEALTH_SYNC_MAX_AGE_MINUTES = 10
    status, body = health(client)
    assert (status, body["failing"], body["checks"]["sync"]) == (503, ["sync"], "has never run")

    synced(minutes_ago=9)
    assert health(client)[0] == 200

    synced(minutes_ago=25)
    status, body = health(client)
    assert (status, body["failing"]) == (503, ["sync"])
    assert body["checks"]["sync"].startswith("last ran 25 min 0") and body["checks"]["sync"].endswith("s ago (more than 10 min)")


@pytest.mark.pds
def test_no_cluster_is_503_unless_the_cluster_is_not_required(mongo_db, pds, client, settings):
    synced()
    status, body = health(client)
    assert (status, body["failing"], body["checks"]["cluster"]) == (503, ["cluster"], "no cluster is running")

    settings.HEALTH_REQUIRE_CLUSTER = False
    status, body = health(client)
    assert (status, body["status"], body["checks"]["cluster"]) == (200, "ok", "no cluster is running")


def test_a_mongodb_and_a_pds_that_hang_fail_their_checks_within_seconds(client, settings, without_cluster):
    mongodb, pds_server = silent_listener(), silent_listener()
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{mongodb.getsockname()[1]}/"
    settings.PDS_URL = f"http://127.0.0.1:{pds_server.getsockname()[1]}"
    settings.HEALTH_TIMEOUT = 1.0
    synced()
    try:
        started = time.monotonic()
        status, body = health(client)
        took = time.monotonic() - started
    finally:
        mongodb.close()
        pds_server.close()

    assert status == 503 and body["failing"] == ["mongodb", "pds"]
    assert took < 3, f"took {took:.1f} s"


def test_the_body_shows_no_secret_when_everything_fails(client, settings, without_cluster):
    planted = {
        "MONGODB_URI": f"mongodb://migrator:PLANTED-mongo-password@127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300",
        "PDS_URL": f"http://admin:PLANTED-pds-password@127.0.0.1:{closed_port()}",
        "PDS_ADMIN_PASSWORD": "PLANTED-admin-password",
        "PDS_RATE_LIMIT_BYPASS_KEY": "PLANTED-bypass-key",
        "SYNC_WEBHOOK_SECRET": "PLANTED-hook-secret",
        "ALERT_WEBHOOK_URL": "https://hooks.example.test/services/PLANTED-webhook-secret",
        "EMAIL_HOST_PASSWORD": "PLANTED-mail-password",
    }
    for name, value in planted.items():
        setattr(settings, name, value)

    response = client.get("/health")

    assert response.status_code == 503
    assert set(response.json()["failing"]) == {"mongodb", "pds", "sync"}
    assert "PLANTED" not in response.content.decode()


def test_it_needs_no_login_and_answers_only_get_and_head(client, settings, without_cluster):
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300"
    assert client.get("/health").status_code == 503  # an answer, not a redirect to the login
    assert client.head("/health").status_code == 503  # some monitors only ask for the status
    assert client.post("/health").status_code == 405


@pytest.mark.pds
def test_a_wrong_mongodb_database_is_named_as_such(world, client, settings):
    world.add_painting()
    from tests.test_engine import migrate_all

    migrate_all()
    settings.MONGODB_DB = "aesthetc"

    body = client.get("/health").json()

    assert "mongodb" in body["failing"] and "check MONGODB_DB" in body["checks"]["mongodb"]
