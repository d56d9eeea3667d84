"""Hostile documents of every kind, as for paintings: a field missing,
null, of the wrong type, huge or unicode gives that one document a readable
skip (or, for valid unicode, a record) and never touches its neighbours,
against the real PDS and SecantusDB."""

import io

import pytest
from django.core.management import call_command

from migrator.kinds import KINDS
from migrator.models import Transfer, SkipReason, Status
from tests.plugins.kinds import document_fields, media_put

EMOJI_5004_BYTES = "🙂" * 1251

# kind -> [(case, the document's fields over a good one's (None removes a field), reason, words of the skip detail)]
CASES = {
    "mood": [
        ("5,001 characters", {"mood": "x" * 5001}, SkipReason.TOO_LONG, "5,001 bytes"),
        ("5,004 bytes of emoji", {"mood": EMOJI_5004_BYTES}, SkipReason.TOO_LONG, "5,004 bytes"),
        ("missing", {"mood": None}, SkipReason.MISSING_FIELD, "no mood"),
        ("a number", {"mood": 42}, SkipReason.BAD_FIELD, "int 42"),
        ("a list", {"mood": ["happy"]}, SkipReason.BAD_FIELD, "list"),
        ("blank", {"mood": "   "}, SkipReason.MISSING_FIELD, "empty"),
        ("deleted", {"deleted": True}, SkipReason.NUKED, "deleted"),
        ("deleted is text", {"deleted": "yes"}, SkipReason.BAD_NUKED, "not true or false"),
        ("no author", {"user": None}, SkipReason.BAD_OWNER, "no author"),
    ],
    "kidlisp": [
        ("source over 50,000", {"source": "(wipe blue)" + " " * 50_000}, SkipReason.TOO_LONG, "50,011 bytes"),
        ("no code", {"code": None}, SkipReason.MISSING_FIELD, "no code"),
        ("code of 11", {"code": "abcdefghijk"}, SkipReason.TOO_LONG, "11 bytes"),
        ("source a dict", {"source": {"$code": 1}}, SkipReason.BAD_FIELD, "dict"),
        ("user a number", {"user": 7}, SkipReason.BAD_OWNER, "int 7"),
    ],
    "piece": [
        ("nuked", {"nuked": True}, SkipReason.NUKED, "nuked"),
        ("no slug", {"slug": None}, SkipReason.MISSING_FIELD, "no slug"),
        ("slug of 101", {"slug": "w" * 101}, SkipReason.TOO_LONG, "101 bytes"),
        ("slug a number", {"slug": 3}, SkipReason.BAD_FIELD, "int 3"),
    ],
    "tape": [
        ("no code", {"code": None}, SkipReason.MISSING_FIELD, "no code"),
        ("a code no URL can hold", {"code": "../../etc"}, SkipReason.BAD_FIELD, "cannot name"),
        ("nuked", {"nuked": True}, SkipReason.NUKED, "nuked"),
        ("no slug", {"slug": None}, SkipReason.MISSING_FIELD, "no slug"),
    ],
    "news": [
        ("11 tags", {"tags": [f"t{n}" for n in range(11)]}, SkipReason.TOO_LONG, "11 tags"),
        ("a tag of 65", {"tags": ["x" * 65]}, SkipReason.TOO_LONG, "65 bytes"),
        ("a url that is not a URI", {"url": "not a link"}, SkipReason.BAD_FIELD, "not a URI"),
        ("tags a string", {"tags": "art"}, SkipReason.BAD_FIELD, "not a list"),
        ("no title", {"title": None}, SkipReason.MISSING_FIELD, "no headline"),
        ("text over 10,000", {"text": "y" * 10_001}, SkipReason.TOO_LONG, "10,001 bytes"),
        ("no author", {"user": None}, SkipReason.BAD_OWNER, "no author"),
        ("dead", {"status": "dead"}, SkipReason.NUKED, "dead"),
    ],
}
COMMON = [
    ("_id a string", {"_id": "not-an-object-id"}, SkipReason.BAD_REF, "not an ObjectId"),
    ("when missing", {"when": None}, SkipReason.BAD_WHEN, "missing"),
    ("when a string", {"when": "2024-01-01"}, SkipReason.BAD_WHEN, "str"),
]
# Valid unicode makes a record (lengths are UTF-8 bytes, not characters).
UNICODE = {
    "mood": {"mood": "مزاجي جيد 👩‍👩‍👧‍👦 café"},
    "kidlisp": {"source": "(ink \"ñandú\") ; 気分"},
    "piece": {"slug": "café-wand"},
    "news": {"title": "Новости 🎨", "tags": ["日本"]},
    "tape": {"slug": "wand-ñ-2025.10.23"},
}
OTHER_KINDS = [kind for kind in KINDS.values() if kind.name != "painting"]


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def insert(world, kind, number: int, overrides: dict, *, owner: str) -> str:
    fields = {**document_fields(kind, number), **{name: value for name, value in overrides.items() if name not in ("_id", "when", "user")}}
    for name in [name for name, value in overrides.items() if value is None]:
        fields.pop(name, None)
    ref = world.add_document(kind, handle=owner, **fields)
    document = world.documents[ref]
    media_put(world, kind, document)
    replaced = {name: overrides[name] for name in ("_id", "when", "user") if name in overrides}
    if replaced:
        collection = world.mongo[kind.mongodb_collection]
        collection.delete_one({"_id": document["_id"]})
        document = {**document, **replaced}
        document = {name: value for name, value in document.items() if value is not None}
        collection.insert_one(document)
        ref = str(document["_id"]) if not isinstance(document["_id"], str) else f"str:{document['_id']}"
    return ref


@pytest.mark.parametrize("kind", OTHER_KINDS, ids=[kind.plural for kind in OTHER_KINDS])
def test_each_hostile_document_is_skipped_for_its_reason_and_its_neighbours_migrate(world, kind):
    owner = next(iter(world.users))
    good = insert(world, kind, 0, {}, owner=owner)
    unicode = insert(world, kind, 1, UNICODE.get(kind.name, {}), owner=owner)
    hostile = {case: (insert(world, kind, 10 + number, fields, owner=owner), reason, words)
               for number, (case, fields, reason, words) in enumerate(CASES.get(kind.name, []) + COMMON)}  # fmt: skip

    out = run("backfill", kind.plural, workers=1)
    assert "failed:   0" in out, out

    for case, (ref, reason, words) in hostile.items():
        row = Transfer.objects.get(kind=kind.name, ref=ref)
        assert (row.status, row.skip_reason) == (Status.SKIPPED, reason), (case, row.status, row.skip_reason, row.skip_detail)
        assert words in row.skip_detail, (case, row.skip_detail)
    for ref in (good, unicode):
        assert Transfer.objects.get(kind=kind.name, ref=ref).status == Status.MIGRATED, ref
    assert sorted(world.records(kind)) == sorted([good, unicode])


def test_a_tape_whose_mp4_is_missing_is_skipped_until_it_appears(world):
    tape = KINDS["tape"]
    ref = world.add_document(tape, **document_fields(tape, 1))
    run("backfill", "tapes", workers=1)
    row = Transfer.objects.get(kind="tape", ref=ref)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.VIDEO_MISSING)
    assert "does not exist yet" in row.skip_detail and "lifts when it appears" in row.skip_detail

    run("seed", "tapes")  # a full seed: the MP4 is still missing
    assert Transfer.objects.get(pk=row.pk).status == Status.SKIPPED

    media_put(world, tape, world.documents[ref])  # the oven made it
    out = run("backfill", "tapes", workers=1)
    assert "migrated: 1" in out, out
    assert list(world.records(tape)) == [ref]
    assert Transfer.objects.get(pk=row.pk).events.filter(message__contains="now exists on the media storage").exists()


def test_a_tape_that_is_not_an_mp4_or_too_large_is_skipped_saying_so(world, settings):
    tape = KINDS["tape"]
    not_mp4 = world.add_document(tape, **document_fields(tape, 2))
    large = world.add_document(tape, **document_fields(tape, 3))
    fine = world.add_document(tape, **document_fields(tape, 4))
    (world.images / "tapes").mkdir(parents=True, exist_ok=True)
    (world.images / "tapes" / f"{world.documents[not_mp4]['code']}.mp4").write_bytes(b"PK\x03\x04" + bytes(3000))
    media_put(world, tape, world.documents[fine])  # 4,000 bytes
    from migrator.samples.mp4 import mp4_bytes

    (world.images / "tapes" / f"{world.documents[large]['code']}.mp4").write_bytes(mp4_bytes(1, 6_000))
    settings.TAPE_MAX_BYTES = 5_000

    run("backfill", "tapes", workers=1)
    rows = {row.ref: row for row in Transfer.objects.filter(kind="tape")}
    assert (rows[not_mp4].skip_reason, rows[large].skip_reason) == (SkipReason.INVALID_VIDEO, SkipReason.TOO_LARGE)
    assert "not an MP4" in rows[not_mp4].skip_detail
    assert "6,000 bytes" in rows[large].skip_detail and "5,000" in rows[large].skip_detail, rows[large].skip_detail
    assert rows[fine].status == Status.MIGRATED and rows[fine].blob_size == 4_000 and rows[fine].blob_mime == "video/mp4"
    assert list(world.records(tape)) == [fine]
