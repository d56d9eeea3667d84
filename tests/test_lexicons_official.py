"""Our lexicons, and migrator.lexicon's answers, against Bluesky's own
validators (pds/lexicon-check.mjs through migrator.lexicon_official)."""

import json
from pathlib import Path

import pytest

from migrator.lexicon import lexicons_load, record_problems
from migrator.lexicon_official import official_problems

LEXICON_DIR = Path(__file__).resolve().parent.parent / "lexicons"
CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
WHEN = "2023-08-24T16:21:09.123Z"
REF = "64e7a1f0c2b3a4d5e6f70812"


def blob(mime_type: str, size: int) -> dict:
    """A blob reference as a PDS returns it: the CID as a $link."""
    return {"$type": "blob", "ref": {"$link": CID}, "mimeType": mime_type, "size": size}


VALID = {
    "computer.aesthetic.painting": {
        "slug": "2023.8.24.16.21.09.123", "code": "a3b", "thumbnail": blob("image/png", 51200),
        "imageUrl": "https://aesthetic.computer/media/paintings/a3b.png", "when": WHEN, "ref": REF, "nuked": False,
    },
    "computer.aesthetic.mood": {"mood": "sleepy 🌙 نعسان", "when": WHEN, "ref": REF},
    "computer.aesthetic.kidlisp": {"source": "(wipe blue)\n(ink red)\n(line 0 0 100 100)", "code": "wab", "when": WHEN, "ref": REF},
    "computer.aesthetic.piece": {"slug": "wand", "when": WHEN, "ref": REF},
    "computer.aesthetic.tape": {"slug": "wand-2025.10.23.12.30.00.123", "code": "k3d", "when": WHEN, "video": blob("video/mp4", 180_000), "ref": REF},
    "computer.aesthetic.news": {
        "headline": "New brush: spray", "when": WHEN, "body": "Try it with `spray`.", "link": "https://aesthetic.computer/spray",
        "tags": ["brushes", "new"], "ref": REF,
    },
}  # fmt: skip

# name: (NSID, the fields that break a valid record of it)
BROKEN = {
    "mood_too_long": ("computer.aesthetic.mood", {"mood": "x" * 5001}),
    "mood_too_many_bytes": ("computer.aesthetic.mood", {"mood": "🌙" * 1251}),  # 1,251 characters, 5,004 bytes
    "mood_not_text": ("computer.aesthetic.mood", {"mood": 42}),
    "mood_without_when": ("computer.aesthetic.mood", {"when": None}),
    "mood_when_without_timezone": ("computer.aesthetic.mood", {"when": "2023-08-24T16:21:09"}),
    "kidlisp_source_too_long": ("computer.aesthetic.kidlisp", {"source": "(wipe)" * 8334}),
    "kidlisp_code_too_long": ("computer.aesthetic.kidlisp", {"code": "x" * 11}),
    "kidlisp_without_code": ("computer.aesthetic.kidlisp", {"code": None}),
    "piece_slug_too_long": ("computer.aesthetic.piece", {"slug": "w" * 101}),
    "piece_without_ref": ("computer.aesthetic.piece", {"ref": None}),
    "tape_video_of_wrong_mime": ("computer.aesthetic.tape", {"video": blob("video/webm", 180_000)}),
    "tape_video_too_big": ("computer.aesthetic.tape", {"video": blob("video/mp4", 52_428_801)}),
    "tape_video_not_a_blob": ("computer.aesthetic.tape", {"video": "https://example.test/k3d.mp4"}),
    "tape_ref_too_long": ("computer.aesthetic.tape", {"ref": REF + "0"}),
    "news_11_tags": ("computer.aesthetic.news", {"tags": [f"tag{number}" for number in range(11)]}),
    "news_tag_of_65": ("computer.aesthetic.news", {"tags": ["t" * 65]}),
    "news_tag_not_text": ("computer.aesthetic.news", {"tags": [7]}),
    "news_link_not_a_uri": ("computer.aesthetic.news", {"link": "see my profile"}),
    "news_without_headline": ("computer.aesthetic.news", {"headline": None}),
    "news_headline_too_long": ("computer.aesthetic.news", {"headline": "h" * 301}),
    "news_body_too_long": ("computer.aesthetic.news", {"body": "b" * 10_001}),
}


def broken(name: str) -> tuple[str, dict]:
    nsid, changes = BROKEN[name]
    record = {**VALID[nsid], **changes}
    return nsid, {field: value for field, value in record.items() if value is not None}


def lexicon_files() -> list[Path]:
    return sorted(LEXICON_DIR.rglob("*.json"))


@pytest.fixture(scope="module")
def official():
    """One run of the reference validators for every question this module asks."""
    documents = [json.loads(path.read_text()) for path in lexicon_files()]
    records = [(nsid, {"$type": nsid, **value}) for nsid, value in VALID.items()] + [broken(name) for name in BROKEN]
    answers = official_problems(documents, records)
    valid = dict(zip(VALID, answers.records[: len(VALID)], strict=True))
    invalid = dict(zip(BROKEN, answers.records[len(VALID) :], strict=True))
    return {"lexicons": dict(zip(lexicon_files(), answers.lexicons, strict=True)), "valid": valid, "broken": invalid}


def test_there_is_a_lexicon_for_every_kind():
    assert set(lexicons_load(LEXICON_DIR)) == set(VALID)


def test_every_lexicon_is_valid_for_the_reference_validators(official):
    assert official["lexicons"] and all(problems == [] for problems in official["lexicons"].values()), official["lexicons"]


def test_every_lexicon_is_a_tid_keyed_record_with_descriptions():
    for path in lexicon_files():
        main = json.loads(path.read_text())["defs"]["main"]
        assert main["type"] == "record" and main["key"] == "tid" and main["description"], path
        assert all(field.get("description") for field in main["record"]["properties"].values()), path


@pytest.mark.parametrize("nsid", sorted(VALID))
def test_a_valid_record_of_each_kind_passes_both_validators(official, nsid):
    assert official["valid"][nsid] == []
    assert record_problems(VALID[nsid], nsid=nsid, lexicons=lexicons_load(LEXICON_DIR)) == []


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_record_fails_both_validators(official, name):
    nsid, record = broken(name)
    assert official["broken"][name], f"the reference validators accept {name}"
    assert record_problems(record, nsid=nsid, lexicons=lexicons_load(LEXICON_DIR)), f"migrator.lexicon accepts {name}"


def test_only_ours_refuses_a_field_the_lexicon_lacks():
    """Lexicons are open: the reference validators (and a PDS) accept fields
    they do not know. migrator.lexicon refuses them on purpose, so that a
    record builder's typo (``text`` for ``mood``) fails before any write."""
    nsid = "computer.aesthetic.mood"
    record = {**VALID[nsid], "text": "sleepy"}
    documents = [json.loads(path.read_text()) for path in lexicon_files()]
    assert official_problems(documents, [(nsid, record)]).records == [[]]
    assert record_problems(record, nsid=nsid, lexicons=lexicons_load(LEXICON_DIR)) == ["text: not in the lexicon"]


def test_a_broken_lexicon_is_refused_by_the_reference_validators():
    document = json.loads((LEXICON_DIR / "computer/aesthetic/mood.json").read_text())
    document["defs"]["main"]["record"]["properties"]["mood"]["maxLength"] = "5000"
    [problems] = official_problems([document], []).lexicons
    assert problems and all("maxLength" in problem for problem in problems)
