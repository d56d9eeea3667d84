"""Records validated against lexicons/ before any write (migrator.lexicon)."""

import copy

import pytest
from atproto_client.models.blob_ref import BlobRef, IpldLink

from migrator.lexicon import InvalidRecord, breaking_changes, lexicons_load, record_problems, record_validate

NSID = "computer.aesthetic.painting"
CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"


def thumbnail(**changes) -> dict:
    return {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/png", "size": 51200, **changes}


def painting(**changes) -> dict:
    record = {
        "$type": NSID,
        "slug": "2023.8.24.16.21.09.123",
        "code": "a3b",
        "thumbnail": thumbnail(),
        "imageUrl": "https://art.aesthetic.computer/@jeffrey/painting/2023.8.24.16.21.09.123.png",
        "when": "2023-08-24T16:21:09.123Z",
        "ref": "64e7a1f0c2b3a4d5e6f70812",
    }
    record.update(changes)
    return {key: value for key, value in record.items() if value is not ...}


def test_a_complete_painting_is_valid():
    record_validate(painting(recordingUrl="https://example.test/r.zip", nuked=True))


def test_the_sdk_blob_ref_is_accepted():
    blob = BlobRef(mime_type="image/jpeg", size=1000, ref=IpldLink(link=CID))
    assert record_problems(painting(thumbnail=blob), nsid=NSID) == []


def test_the_painting_lexicon_is_loaded_by_its_nsid():
    assert lexicons_load()[NSID]["defs"]["main"]["key"] == "tid"


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"slug": ...}, "slug: required"),
        ({"ref": None}, "ref: required"),
        ({"colour": "red"}, "colour: not in the lexicon"),
        ({"code": 123}, "code: must be a string"),
        ({"nuked": "yes"}, "nuked: must be a boolean"),
        ({"code": "x" * 11}, "code: 11 bytes, more than maxLength 10"),
        ({"code": "é" * 6}, "code: 12 bytes, more than maxLength 10"),
        ({"imageUrl": "not a uri"}, "imageUrl: 'not a uri' is not a URI"),
        ({"when": "2023-08-24 16:21:09"}, "is not an RFC 3339 datetime"),
        ({"when": "2023-08-24T16:21:09"}, "is not an RFC 3339 datetime"),
        ({"when": "2023-02-30T16:21:09Z"}, "is not a real date and time"),
        ({"thumbnail": thumbnail(mimeType="image/gif")}, "mimeType 'image/gif' is not one of image/png, image/jpeg"),
        ({"thumbnail": thumbnail(size=102401)}, "102401 bytes, more than maxSize 102400"),
        ({"thumbnail": thumbnail(ref={"$link": "nope"})}, "the blob's ref is not a CID link"),
        ({"thumbnail": "https://example.test/t.png"}, "thumbnail: must be a blob"),
        ({"$type": "app.bsky.feed.post"}, "$type is 'app.bsky.feed.post'"),
    ],
)
def test_an_invalid_record_is_refused_with_the_reason(changes, problem):
    with pytest.raises(InvalidRecord) as invalid:
        record_validate(painting(**changes))
    assert any(problem in reason for reason in invalid.value.problems), invalid.value.problems


def test_every_problem_is_listed_at_once():
    problems = record_problems(painting(slug=..., code="x" * 11, extra=1), nsid=NSID)
    assert len(problems) == 3


def test_an_unknown_lexicon_is_a_problem():
    [problem] = record_problems({}, nsid="computer.aesthetic.nothing")
    assert problem.startswith("no lexicon computer.aesthetic.nothing under")


@pytest.fixture
def published():
    return lexicons_load()[NSID]


def record_schema(lexicon: dict) -> dict:
    return lexicon["defs"]["main"]["record"]


def test_an_unchanged_or_grown_lexicon_breaks_nothing(published):
    grown = copy.deepcopy(published)
    record_schema(grown)["properties"]["title"] = {"type": "string", "maxLength": 100}
    assert breaking_changes(published, published) == []
    assert breaking_changes(published, grown) == []


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda s: s["required"].remove("code"), "#main.code: required field removed or made optional"),
        (lambda s: s["required"].append("nuked"), "#main.nuked: new required field"),
        (lambda s: s["properties"]["code"].update(type="integer"), "#main.code: type changed from string to integer"),
    ],
)
def test_a_breaking_change_is_named(published, change, problem):
    local = copy.deepcopy(published)
    change(record_schema(local))
    assert breaking_changes(published, local) == [problem]
