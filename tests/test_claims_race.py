"""Two workers claim at the same instant, from overlapping batches, in
processes of their own against the console's database (PostgreSQL's
SELECT … FOR UPDATE SKIP LOCKED in that leg, SQLite's IMMEDIATE
transactions in the other): every painting is claimed exactly once."""

import json
from pathlib import Path

import pytest

from tests.waiting import wait_for

pytestmark = [pytest.mark.pds, pytest.mark.django_db, pytest.mark.slow]

# Each claimer, once Django is up and its ids are read, says it is ready and
# waits for the go (a barrier on events, not on a clock, so a loaded machine
# only makes the start later). They take the same overlapping batches from
# opposite ends, and each waits after its first claim until the other has
# made its own: however late one of them is scheduled, both then run towards
# each other at once and contend for the batches where they meet (a claim
# takes a few milliseconds, so a claimer scheduled first could otherwise take
# all 18 batches before the other started).
CLAIMER = """
import json, pathlib, time
from migrator.models import Transfer, Status
from migrator.services.state import transfers_transition
barrier, name, other = pathlib.Path("{barrier}"), "{name}", "{other}"
ids = list(Transfer.objects.order_by("id").values_list("id", flat=True))
batches = [ids[at : at + 14] for at in range(0, len(ids), 7)]  # each batch overlaps the next
if name == "b":
    batches.reverse()
(barrier / name).touch()
while not (barrier / "go").exists():
    time.sleep(0.001)
claimed = []
for number, batch in enumerate(batches):
    claimed += transfers_transition(Transfer.objects.filter(id__in=batch), from_statuses=[Status.PENDING], to=Status.RUNNING, actor=name, claimed_by=name)
    if number == 0:
        (barrier / f"{{name}}-started").touch()
        deadline = time.monotonic() + 60
        while not (barrier / f"{{other}}-started").exists() and time.monotonic() < deadline:
            time.sleep(0.001)
print(json.dumps({{"claimed": claimed}}))
"""


def test_two_workers_racing_never_claim_one_painting_twice(world, console, tmp_path: Path):
    for number in range(120):
        world.add_painting(handle=list(world.users)[number % 2] if number % 3 else None)
    console.run("seed_paintings")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    claimers = {name: console.start("shell", "-c", CLAIMER.format(barrier=barrier, name=name, other=other)) for name, other in (("a", "b"), ("b", "a"))}
    wait_for(
        lambda: all((barrier / name).exists() or process.poll() is not None for name, process in claimers.items()),
        timeout=120, what="both claimers to be ready",
    )  # fmt: skip
    (barrier / "go").touch()
    claimed = {}
    for name, process in claimers.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        claimed[name] = set(json.loads(output.strip().splitlines()[-1])["claimed"])

    if console.env["DATABASE_URL"].startswith("postgres"):
        # SKIP LOCKED: the loser of a row lock takes the batch's other rows, so both progress.
        assert claimed["a"] and claimed["b"], f"no race happened: {[len(ids) for ids in claimed.values()]}"
    assert not claimed["a"] & claimed["b"]
    everything = {row[0] for row in console.query("select id from migrator_transfer")}
    assert claimed["a"] | claimed["b"] == everything
    events = console.query("select transfer_id, count(*) from migrator_transferevent where to_status = 'running' group by transfer_id")
    assert all(count == 1 for _, count in events) and len(events) == len(everything)
    holders = dict(console.query("select id, claimed_by from migrator_transfer"))
    assert all(holders[painting] == name for name, ids in claimed.items() for painting in ids)
