"""Exactly once, the hard way: kill the migrating processes at a random
moment (SIGKILL, no clean-up), run again, and find exactly one record per
painting and the matching rkey in MongoDB."""

import random
import signal
import time

import pytest

pytestmark = [pytest.mark.pds, pytest.mark.django_db, pytest.mark.slow]


def counts(console) -> dict[str, int]:
    return dict(console.query("select status, count(*) from migrator_transfer group by status"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killing_a_run_at_a_random_moment_never_duplicates_a_record(world, console, seed):
    names = list(world.users)
    refs = [world.add_painting(handle=names[number % 2] if number % 3 else None) for number in range(36)]
    console.env["MIGRATION_BATCH_SIZE"] = "4"

    run = console.start("backfill_paintings", "--workers", "2")
    # Wait until it is under way, then a random while longer, but kill it
    # while paintings are still in flight: a kill after the end proves nothing.
    deadline = time.monotonic() + 120
    while not counts(console).get("running") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    in_flight = counts(console)
    console.kill(run)
    assert in_flight.get("running", 0) > 0 and in_flight.get("migrated", 0) < len(refs), f"the kill landed after the run: {in_flight}"

    for _ in range(2):  # run again until nothing is left; the first rerun should do it
        output = console.run("backfill_paintings", "--workers", "2").stdout
        if "remain pending" not in output:
            break

    records = world.records()
    state = dict(console.query("select ref, rkey from migrator_transfer where status = 'migrated'"))
    for ref in refs:
        trail = console.query(
            "select e.from_status, e.to_status, e.message from migrator_transferevent e join migrator_transfer p on p.id = e.transfer_id where p.ref = %s order by e.id", ref
        )
        assert len(records[ref]) == 1, f"painting {ref} has {len(records[ref])} records; its trail: {trail}\nlast run: {output}"
        rkey = records[ref][0].rkey
        assert state[ref] == rkey
        assert world.mongo.paintings.find_one({"_id": world.paintings[ref]["_id"]})["atproto"]["rkey"] == rkey


def test_ctrl_c_stops_after_the_batches_in_flight(world, console):
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
    assert counts(console).get("running", 0) == 0
    migrated = counts(console).get("migrated", 0)
    assert 0 < migrated < len(refs)
    console.run("backfill_paintings", "--workers", "2")  # and it resumes to the end
    records = world.records()
    assert len(records) == len(refs) and all(len(found) == 1 for found in records.values())
