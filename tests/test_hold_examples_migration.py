"""Migration 0012 renames the key that names each example of a removal
hold from ``painting`` to ``document`` in holds stored before it, leaves
whatever else a hold's examples hold as it is, and reverses. On SQLite and
on PostgreSQL (bin/test's two legs)."""

import datetime as dt

import pytest

from tests.migration_steps import migrate, state_at

BEFORE, AFTER = ("migrator", "0011_kind_neutral_columns"), ("migrator", "0012_hold_examples_document")
OLD = [{"ref": "a" * 24, "painting": "@amy 2024.1.1.0.0.00.000", "status": "migrated", "uri": "at://did:plc:x/computer.aesthetic.painting/3k"}]
NEW = [{"ref": "a" * 24, "document": "@amy 2024.1.1.0.0.00.000", "status": "migrated", "uri": "at://did:plc:x/computer.aesthetic.painting/3k"}]
# Examples the migration must not touch: not a dict, no old key, a hold of no list.
ODD = [["a list"], {"ref": "b" * 24}, "text"]


@pytest.fixture
def at_0011(transactional_db):
    yield from state_at(BEFORE)


def test_stored_examples_are_renamed_in_place_and_back(at_0011):
    holds = at_0011.get_model("migrator", "RemovalHold")
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    made = {
        name: holds.objects.create(kind="painting", checked_at=now, count=9, known=10, bound=5, database="aesthetic", examples=examples).pk
        for name, examples in {"old": OLD, "odd": ODD, "none": [], "not a list": {"ref": "c"}}.items()
    }

    def examples(apps):
        stored = apps.get_model("migrator", "RemovalHold").objects
        return {name: stored.get(pk=pk).examples for name, pk in made.items()}

    assert examples(migrate(AFTER)) == {"old": NEW, "odd": ODD, "none": [], "not a list": {"ref": "c"}}
    assert examples(migrate(BEFORE)) == {"old": OLD, "odd": ODD, "none": [], "not a list": {"ref": "c"}}
