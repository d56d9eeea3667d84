"""The registry of kinds of record, and the painting's declaration."""

import pytest
from django.conf import settings

from migrator import source
from migrator.kinds import KINDS, PAINTING, kind_for


def test_every_module_of_the_package_is_a_kind_the_painting_first():
    import pkgutil

    import migrator.kinds

    modules = {module.name for module in pkgutil.iter_modules(migrator.kinds.__path__)}
    assert set(KINDS) == modules
    assert next(iter(KINDS.values())) is PAINTING
    assert kind_for("painting") is PAINTING and kind_for("paintings") is PAINTING
    assert kind_for("moods").nsid == "computer.aesthetic.mood"


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(LookupError, match="'sculpture'.*paintings"):
        kind_for("sculpture")


def test_every_kind_has_a_lexicon_and_names_of_its_own():
    from migrator.lexicon import lexicons_load

    lexicons = lexicons_load()
    assert len({kind.nsid for kind in KINDS.values()}) == len({kind.plural for kind in KINDS.values()}) == len(KINDS)
    for kind in KINDS.values():
        assert kind.nsid in lexicons, kind.name
        assert lexicons[kind.nsid]["defs"]["main"]["key"] == "tid"
        assert len(kind.record_shape()) == 32


def test_the_painting_declares_what_the_console_always_used():
    assert PAINTING.nsid == settings.PAINTING_COLLECTION
    assert PAINTING.mongodb_collection == "paintings"
    assert PAINTING.projection == source.PAINTING_FIELDS
    assert PAINTING.migrated_field == "atproto.rkey"
    assert (PAINTING.key_document, PAINTING.key_fields, PAINTING.deleted_flag) == ("atproto", ("rkey", "uri"), "nuked")


def test_a_kind_cannot_be_changed_once_declared():
    with pytest.raises(AttributeError):
        PAINTING.nsid = "computer.aesthetic.mood"


# From ../shared/notes/collections.md: collection, where the key goes back,
# what marks a document deleted, the blob field.
DECLARED = {
    "painting": ("paintings", "atproto", ("rkey", "uri"), "nuked", "thumbnail"),
    "mood": ("moods", "atproto", ("rkey", "uri"), "deleted", None),
    "kidlisp": ("kidlisp", "atproto", ("rkey", "uri"), None, None),
    "piece": ("pieces", "atproto", ("rkey", "uri"), "nuked", None),
    "tape": ("tapes", "at", ("rkey", "uri", "cid"), "nuked", "video"),
    "news": ("news-posts", "atproto", ("rkey", "uri", "did"), None, None),
}


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_each_kind_declares_what_aesthetic_computer_does(name):
    kind = kind_for(name)
    assert (kind.mongodb_collection, kind.key_document, kind.key_fields, kind.deleted_flag, kind.blob_field) == DECLARED[name]
    assert kind.nsid == f"computer.aesthetic.{name}"
    assert (kind.blob_make is None) == (kind.blob_field is None)
