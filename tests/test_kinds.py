"""The registry of kinds of record, and the painting's declaration."""

import pytest
from django.conf import settings

from migrator import source
from migrator.kinds import KINDS, PAINTING, kind_for


def test_the_painting_is_the_one_kind_declared():
    assert KINDS == {"painting": PAINTING}
    assert kind_for("painting") is PAINTING


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(LookupError, match="'mood'.*painting"):
        kind_for("mood")


def test_the_painting_declares_what_the_console_always_used():
    assert PAINTING.nsid == settings.PAINTING_COLLECTION
    assert PAINTING.mongodb_collection == "paintings"
    assert PAINTING.projection == source.PAINTING_FIELDS
    assert PAINTING.migrated_field == "atproto.rkey"
    assert (PAINTING.key_document, PAINTING.key_fields, PAINTING.deleted_flag) == ("atproto", ("rkey", "uri"), "nuked")


def test_a_kind_cannot_be_changed_once_declared():
    with pytest.raises(AttributeError):
        PAINTING.nsid = "computer.aesthetic.mood"
