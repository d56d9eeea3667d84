"""Exactly once, the hard way: kill the migrating processes at a random
moment (SIGKILL, no clean-up), run again, and find exactly one record per
painting and the matching rkey in MongoDB."""

import random
import signal
import sqlite3
import time

import pytest

pytestmark = [pytest.mark.pds, pytest.mark.django_db, pytest.mark.slow]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killing_a_run_at_a_random_moment_never_duplicates_a_record(world, console, tmp_path, seed):
    names = list(world.users)
    refs = [world.add_painting(handle=names[number % 2] if number % 3 else None) for number in range(36)]
    console.env["MIGRATION_BATCH_SIZE"] = "4"

    run = console.start("backfill_paintings", "--workers", "2")
    time.sleep(random.Random(seed).uniform(2.0, 6.0))
    console.kill(run)

    for _ in range(2):  # run again until nothing is left; the first rerun should do it
        output = console.run("backfill_paintings", "--workers", "2").stdout
        if "remain pending" not in output:
            break

    records = world.records()
    state = dict(sqlite3.connect(tmp_path / "console.sqlite3").execute("select ref, rkey from migrator_paintingmigration where status = 'migrated'").fetchall())
    database = sqlite3.connect(tmp_path / "console.sqlite3")
    for ref in refs:
        trail = database.execute(
            "select e.from_status, e.to_status, e.message from migrator_migrationevent e join migrator_paintingmigration p on p.id = e.painting_id where p.ref = ? order by e.id", (ref,)
        ).fetchall()
        assert len(records[ref]) == 1, f"painting {ref} has {len(records[ref])} records; its trail: {trail}\nlast run: {output}"
        rkey = records[ref][0].rkey
        assert state[ref] == rkey
        assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})["atproto"]["rkey"] == rkey


def test_ctrl_c_stops_after_the_batches_in_flight(world, console, tmp_path):
    names = list(world.users)
    refs = [world.add_painting(handle=names[number % 2], size=(2400, 2400)) for number in range(60)]
    console.env["MIGRATION_BATCH_SIZE"] = "2"

    run = console.start("backfill_paintings", "--workers", "2")
    lines = []
    for line in run.stdout:  # wait until it is migrating, then press Ctrl-C
        lines.append(line)
        if line.startswith("Migrating"):
            break
    time.sleep(1)
    run.send_signal(signal.SIGINT)
    output = "".join(lines) + run.communicate(timeout=120)[0]

    assert run.returncode == 0, output
    assert "Stopping after the batches in flight" in output
    assert "Stopped in" in output and "run this command again to resume" in output
    database = sqlite3.connect(tmp_path / "console.sqlite3")
    assert database.execute("select count(*) from migrator_paintingmigration where status = 'running'").fetchone()[0] == 0
    migrated = database.execute("select count(*) from migrator_paintingmigration where status = 'migrated'").fetchone()[0]
    assert 0 < migrated < len(refs)
    console.run("backfill_paintings", "--workers", "2")  # and it resumes to the end
    records = world.records()
    assert len(records) == len(refs) and all(len(found) == 1 for found in records.values())
