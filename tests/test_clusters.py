"""Scaling past one machine: two django-q2 clusters on one Redis and one
PostgreSQL migrate the corpus together, with no painting done twice.

Needs the PostgreSQL and Redis servers on 127.0.0.1 (CI has both); the
product itself runs without either."""

import os
import secrets
import subprocess
import time
from collections import Counter

import psycopg
import pytest
import redis as redis_client

from tests.plugins.processes import Console

pytestmark = [pytest.mark.pds, pytest.mark.django_db, pytest.mark.slow]
POSTGRES = os.environ.get("CLUSTER_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("CLUSTER_TEST_REDIS", "redis://127.0.0.1:6379/7")


@pytest.fixture
def shared_postgres():
    """A PostgreSQL database of this test's own."""
    name = f"migrator_clusters_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.fail(f"The two-cluster test needs PostgreSQL at {POSTGRES}: {error}")
    admin.execute(f'create database "{name}"')
    yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    admin.execute(f'drop database "{name}" with (force)')
    admin.close()


def descendants(pid: int) -> set[int]:
    found, frontier = set(), [pid]
    while frontier:
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(frontier.pop())], capture_output=True, text=True).stdout.split()
        for child in map(int, children):
            found.add(child)
            frontier.append(child)
    return found


def test_two_clusters_share_the_work_without_duplicates(world, settings, tmp_path, shared_postgres):
    redis_client.Redis.from_url(REDIS).ping()
    names = list(world.users)
    refs = [world.add_painting(handle=names[number % 2] if number % 4 else None) for number in range(48)]
    console = Console(
        settings, shared_postgres, tmp_path / "var",
        REDIS_URL=REDIS, Q_CLUSTER_NAME=f"test-{secrets.token_hex(4)}", MIGRATION_BATCH_SIZE="3",
        # Few workers each, whatever the cores: a cluster that starts first
        # with many could finish all 16 jobs before the other has begun.
        Q_WORKERS="2",
    )
    console.run("migrate", "-v0")
    console.run("create_anon_account")
    console.run("backfill_paintings", "--queue")

    clusters = [console.start("qcluster"), console.start("qcluster")]
    workers = {}
    try:
        deadline = time.monotonic() + 180
        with psycopg.connect(shared_postgres) as database:
            while time.monotonic() < deadline:
                for cluster in clusters:
                    workers.update({pid: cluster.pid for pid in descendants(cluster.pid)})
                left = database.execute("select count(*) from migrator_transfer where status in ('pending', 'queued', 'running')").fetchone()[0]
                if left == 0:
                    break
                time.sleep(0.5)
            claims = database.execute("select actor, p.ref from migrator_transferevent e join migrator_transfer p on p.id = e.transfer_id where e.to_status = 'migrated'").fetchall()
            statuses = dict(database.execute("select status, count(*) from migrator_transfer group by status").fetchall())
    finally:
        logs = [Console.kill(cluster) for cluster in clusters]

    assert statuses == {"migrated": len(refs)}, "\n\n".join(log[-6000:] for log in logs)
    migrated_per_painting = Counter(ref for _, ref in claims)
    assert set(migrated_per_painting.values()) == {1}, "a painting was migrated twice"
    clusters_that_worked = {workers.get(int(actor.rsplit(":", 1)[1])) for actor, _ in claims}
    assert clusters_that_worked == {cluster.pid for cluster in clusters}, "both clusters should have taken jobs"
    records = world.records()
    assert all(len(records[ref]) == 1 for ref in refs)


def test_the_cluster_kills_a_job_before_its_broker_would_deliver_it_again(settings):
    """A configuration check, not a run: django-q2 redelivers an unacknowledged
    job after ``retry`` seconds and kills one that runs past ``timeout``. A
    job that still ran when redelivered would be harmless (claims are
    conditional: test_integrity), but should not happen."""
    cluster = settings.Q_CLUSTER
    assert cluster["timeout"] < cluster["retry"]
    assert cluster["max_attempts"] >= 1
