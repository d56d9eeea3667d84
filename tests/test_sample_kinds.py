"""The other kinds' sample documents (migrator.samples): the notes' figures,
deterministic, with their edge cases, written by make_sample_data and
served by bin/local-images."""

import datetime as dt
import http.client
import io
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from bson import ObjectId
from django.core.management import call_command

from migrator import source
from migrator.lexicon import lexicons_load, record_problems
from migrator.management.commands import make_sample_data
from migrator.sample import corpus_plan
from migrator.samples import files_write, samples_plan, users_from_corpus
from migrator.samples.mp4 import SMALLEST_MP4, is_mp4, mp4_bytes
from migrator.samples.tape import LARGE_MP4_BYTES, mp4_path

ROOT = Path(__file__).resolve().parent.parent
CID = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
COLLECTIONS = {"mood": "moods", "kidlisp": "kidlisp", "piece": "pieces", "tape": "tapes", "news": "news-posts"}


@pytest.fixture(scope="module")
def corpus():
    return corpus_plan(scale=1.0, seed=1)


@pytest.fixture(scope="module")
def plan(corpus):
    return {sample.kind: sample for sample in samples_plan(users_from_corpus(corpus), seed=1, scale=1.0)}


def jeffrey(corpus) -> str:
    return next(handle["_id"] for handle in corpus.handles if handle["handle"] == "jeffrey")


def by_owner(sample) -> Counter:
    return Counter(document.get("user") for document in sample.documents)


def near(value: int, figure: int, percent: float = 3) -> bool:
    return abs(value - figure) <= figure * percent / 100


def test_the_same_seed_makes_the_same_samples_and_another_seed_others(corpus):
    users = users_from_corpus(corpus)
    first, again, other = samples_plan(users, seed=5, scale=0.3), samples_plan(users, seed=5, scale=0.3), samples_plan(users, seed=6, scale=0.3)
    assert first == again
    for one, another in zip(first, other, strict=True):
        assert one.documents != another.documents, one.kind


def test_the_painting_corpus_is_untouched(corpus):
    """Each kind draws from a Random of its own: planning them changes
    nothing of the paintings the same seed makes."""
    samples_plan(users_from_corpus(corpus), seed=1, scale=1.0)
    again = corpus_plan(scale=1.0, seed=1)
    assert again.paintings == corpus.paintings and again.users == corpus.users and again.images == corpus.images


def test_every_kind_has_its_collection_and_owners_from_the_corpus(corpus, plan):
    subs = {user["_id"] for user in corpus.users}
    assert {kind: sample.collection for kind, sample in plan.items()} == COLLECTIONS
    for sample in plan.values():
        assert set(by_owner(sample)) - {None} <= subs, sample.kind


def test_scale_one_has_the_notes_figures_for_moods(corpus, plan):
    owners = by_owner(plan["mood"])
    assert near(owners.total(), 2730) and near(len(owners), 978) and owners[jeffrey(corpus)] == 226
    assert None not in owners  # a mood always has an author
    deleted = Counter(mood.get("deleted") for mood in plan["mood"].documents)
    assert 0 < deleted[True] < 40 and deleted[False]


def test_scale_one_has_the_notes_figures_for_kidlisp_pieces_tapes_and_news(corpus, plan):
    kidlisp, pieces, tapes, news = (by_owner(plan[kind]) for kind in ("kidlisp", "piece", "tape", "news"))
    assert near(kidlisp.total(), 4000) and kidlisp[jeffrey(corpus)] == 2220 and kidlisp[None] > 0
    assert near(pieces.total(), 300) and pieces[jeffrey(corpus)] == 26 and pieces[None] > 0
    assert tapes.total() == 35 and tapes[None] == 32
    assert near(news.total(), 40) and 3 <= len(news) <= 6 and None not in news
    assert Counter(tape["nuked"] for tape in plan["tape"].documents)[True] >= 2
    posts = plan["news"].documents
    assert any(post.get("tags") for post in posts) and any(post["url"] for post in posts) and any(post["url"] == "" for post in posts)


@pytest.mark.parametrize("scale", [0.01, 0.1, 0.5])
def test_other_scales_keep_the_proportions(scale):
    users = users_from_corpus(corpus_plan(scale=scale, seed=2))
    plan = {sample.kind: sample for sample in samples_plan(users, seed=2, scale=scale)}
    assert len(plan["mood"].documents) == round(2730 * scale) and len(plan["kidlisp"].documents) == round(4000 * scale)
    assert len(plan["tape"].documents) == round(35 * scale) and len(plan["news"].documents) == round(40 * scale)
    assert all("user" in mood for mood in plan["mood"].documents)


def test_piece_slugs_are_unique_per_user_and_kidlisp_codes_and_hashes_unique(plan):
    slugs = Counter((piece.get("user"), piece["slug"]) for piece in plan["piece"].documents if "slug" in piece)
    assert slugs.most_common(1)[0][1] == 1
    for field in ("code", "hash"):
        values = Counter(program[field] for program in plan["kidlisp"].documents if field in program)
        assert values.most_common(1)[0][1] == 1, field


CASES = {
    "mood": {
        "mood_too_long": lambda mood: len(mood["mood"]) == 5001,
        "mood_too_many_bytes": lambda mood: len(mood["mood"]) <= 5000 < len(mood["mood"].encode()),
        "mood_missing": lambda mood: "mood" not in mood,
        "mood_null": lambda mood: mood["mood"] is None,
        "mood_not_text": lambda mood: not isinstance(mood["mood"], str),
        "mood_unicode": lambda mood: not mood["mood"].isascii() and len(mood["mood"].encode()) <= 5000,
    },
    "kidlisp": {
        "kidlisp_source_too_long": lambda program: len(program["source"]) > 50_000,
        "kidlisp_code_missing": lambda program: "code" not in program,
        "kidlisp_code_too_long": lambda program: len(program["code"]) > 10,
    },
    "piece": {
        "piece_slug_missing": lambda piece: "slug" not in piece,
        "piece_slug_too_long": lambda piece: len(piece["slug"]) > 100,
    },
    "tape": {
        "tape_mp4_missing": lambda tape: tape["mp4Status"] == "complete",
        "tape_not_mp4": lambda tape: tape["mp4Status"] == "complete",
        "tape_large": lambda tape: tape["mp4Status"] == "complete",
        "tape_not_baked": lambda tape: tape["mp4Status"] == "oven-failed" and "mp4Url" not in tape,
    },
    "news": {
        "news_too_many_tags": lambda post: len(post["tags"]) == 11,
        "news_tag_too_long": lambda post: max(len(tag) for tag in post["tags"]) == 65,
        "news_url_not_uri": lambda post: post["url"] and "://" not in post["url"],
        "news_title_missing": lambda post: "title" not in post,
        "news_when_not_date": lambda post: isinstance(post["when"], str),
        "news_dead": lambda post: post["status"] == "dead",
    },
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_planted_case_is_in_its_documents(plan, kind):
    sample = plan[kind]
    documents = {str(document["_id"]): document for document in sample.documents}
    common = {"bad_id": lambda document: not isinstance(document["_id"], ObjectId), "when_missing": lambda document: "when" not in document}
    cases = {**CASES[kind], **common}
    assert set(sample.planted) == set(cases)
    for case, refs in sample.planted.items():
        assert refs, case
        for ref in refs:
            assert cases[case](documents[ref]), f"{kind} {ref} does not carry {case}"


def test_only_the_planted_documents_lack_an_object_id_or_a_when(plan):
    for sample in plan.values():
        odd = {str(document["_id"]) for document in sample.documents if not isinstance(document["_id"], ObjectId) or "when" not in document}
        assert odd == set(sample.planted["bad_id"] + sample.planted["when_missing"]), sample.kind


def blob(size: int) -> dict:
    return {"$type": "blob", "ref": {"$link": CID}, "mimeType": "video/mp4", "size": size}


# A document's record if copied field by field (the MP4's size given): enough
# to tell which documents a lexicon refuses. The console's builders are its own.
COPIED = {
    "mood": lambda document, size: {"mood": document.get("mood")},
    "kidlisp": lambda document, size: {"source": document.get("source"), "code": document.get("code")},
    "piece": lambda document, size: {"slug": document.get("slug")},
    "tape": lambda document, size: {"slug": document["slug"], "code": document["code"], "video": blob(size)},
    "news": lambda document, size: {
        "headline": document.get("title"), "body": document["text"] or None, "link": document["url"] or None, "tags": document.get("tags"),
    },
}  # fmt: skip


def copied_record(kind: str, document: dict, files: dict[str, bytes]) -> dict:
    when = document.get("when")
    record = {"when": when.isoformat(timespec="milliseconds").replace("+00:00", "Z") if isinstance(when, dt.datetime) else when}
    size = len(files.get(mp4_path(document.get("code", "")), b""))
    return {**record, "ref": str(document["_id"]), **COPIED[kind](document, size)}


# Planted cases whose documents a lexicon refuses as they are.
# (A string ``when`` copied as is happens to be a valid datetime.)
REFUSED = {"when_missing"} | {case for cases in CASES.values() for case in cases} - {
    "mood_unicode", "news_dead", "news_when_not_date", "tape_mp4_missing", "tape_not_mp4", "tape_large", "tape_not_baked",
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_only_the_planted_documents_break_the_lexicon(plan, kind):
    sample = plan[kind]
    files = {file.path: file.content for file in sample.files}
    lexicons, nsid = lexicons_load(ROOT / "lexicons"), f"computer.aesthetic.{kind}"
    refused = {ref for case, refs in sample.planted.items() if case in REFUSED for ref in refs}
    for document in sample.documents:
        problems = record_problems(copied_record(kind, document, files), nsid=nsid, lexicons=lexicons)
        assert bool(problems) == (str(document["_id"]) in refused), (document["_id"], problems)


def test_each_baked_tape_has_its_mp4_but_the_planted_ones(plan, settings):
    sample = plan["tape"]
    files = {file.path: file.content for file in sample.files}
    planted = {case: {str(ref) for ref in refs} for case, refs in sample.planted.items()}
    settings.TAPE_MAX_BYTES = 100_000  # as the tests of the console lower it
    for tape in sample.documents:
        content = files.get(mp4_path(tape["code"]))
        ref = str(tape["_id"])
        if ref in planted["tape_mp4_missing"] | planted["tape_not_baked"]:
            assert content is None
        elif ref in planted["tape_not_mp4"]:
            assert content.startswith(b"PK\x03\x04") and not is_mp4(content)
        elif ref in planted["tape_large"]:
            assert is_mp4(content) and len(content) == LARGE_MP4_BYTES > settings.TAPE_MAX_BYTES
        else:
            assert is_mp4(content) and 2_000 <= len(content) <= 20_000, ref


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    found, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        found.append((data[offset + 4 : offset + 8], size))
        offset += size
    assert offset == len(data)
    return found


def test_an_mp4_is_made_of_whole_boxes_of_the_size_asked():
    content = mp4_bytes(seed=3, size=5000)
    assert len(content) == 5000 and content == mp4_bytes(seed=3, size=5000) != mp4_bytes(seed=4, size=5000)
    [(ftyp, ftyp_size), (moov, moov_size), (mdat, _)] = boxes(content)
    assert (ftyp, moov, mdat) == (b"ftyp", b"moov", b"mdat")
    assert content[ftyp_size + 12 : ftyp_size + 16] == b"mvhd" and moov_size == 8 + 108  # moov holds one movie header
    assert len(mp4_bytes(seed=1, size=SMALLEST_MP4)) == SMALLEST_MP4
    with pytest.raises(ValueError):
        mp4_bytes(seed=1, size=SMALLEST_MP4 - 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"PK\x03\x04" + bytes(100),
        b"",
        mp4_bytes(1, 1000)[:10],  # cut short
        (20).to_bytes(4, "big") + b"ftypqt  " + bytes(4) + b"qt  ",  # QuickTime, not MP4
        (400).to_bytes(4, "big") + b"ftypisom" + bytes(8),  # an ftyp longer than the file
    ],
    ids=["png", "zip", "empty", "truncated", "quicktime", "ftyp-overruns"],
)
def test_what_is_not_an_mp4_is_refused(data):
    assert not is_mp4(data)


def test_a_file_the_plan_lacks_is_removed_so_a_missing_mp4_is_missing(tmp_path, plan):
    files = plan["tape"].files
    (tmp_path / "tapes").mkdir()
    (tmp_path / "tapes" / "stale.mp4").write_bytes(mp4_bytes(1, 1000))
    assert files_write(tmp_path, files) == len(files)
    assert not (tmp_path / "tapes" / "stale.mp4").exists()
    assert files_write(tmp_path, files) == 0  # already there


def test_collection_replace_drops_and_refills_one_collection(mongo_db):
    mongo_db.moods.insert_one({"mood": "old"})
    mongo_db.kidlisp.insert_one({"code": "kept"})
    assert source.collection_replace("moods", ({"mood": str(number)} for number in range(5)), indexes=("user", "when"), batch_size=2) == 5
    assert sorted(mood["mood"] for mood in mongo_db.moods.find()) == ["0", "1", "2", "3", "4"]
    assert {"user_1", "when_1"} <= set(mongo_db.moods.index_information())
    assert mongo_db.kidlisp.count_documents({}) == 1
    assert source.collection_replace("tapes", []) == 0 and "tapes" in mongo_db.list_collection_names()


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command("make_sample_data", *args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.slow  # the whole sample corpus of every kind
def test_the_command_writes_every_kinds_collection(mongo_db, plan):
    output = run(scale=1.0, seed=1, no_images=True)
    for kind, collection in COLLECTIONS.items():
        assert mongo_db[collection].count_documents({}) == len(plan[kind].documents), collection
        assert f"Wrote {len(plan[kind].documents)} {collection} (" in output
    assert mongo_db.moods.count_documents({"deleted": True}) == sum(mood.get("deleted") is True for mood in plan["mood"].documents)
    assert "user_1" in mongo_db.moods.index_information() and "code_1" in mongo_db.tapes.index_information()
    assert "planted bad_id 1, mood_missing 1, mood_not_text 2," in output
    assert output.index("Wrote 3903 paintings") < output.index("Wrote 2730 moods") < output.index("Done in")


def test_paintings_only_leaves_the_other_collections_alone(mongo_db):
    mongo_db.moods.insert_one({"mood": "kept"})
    output = run(scale=0.05, seed=1, no_images=True, paintings_only=True)
    assert "Wrote 195 paintings" in output and "moods" not in output
    assert [mood["mood"] for mood in mongo_db.moods.find()] == ["kept"] and "kidlisp" not in mongo_db.list_collection_names()


@pytest.mark.slow  # the whole sample corpus of every kind
def test_the_command_writes_the_tapes_mp4s_beside_the_images(mongo_db, plan, tmp_path, monkeypatch):
    monkeypatch.setattr(make_sample_data, "write_images", lambda root, jobs, workers=None: 0)  # no PNGs: not what this tests
    output = run(scale=1.0, seed=1, images=tmp_path)
    written = sorted(path.relative_to(tmp_path).as_posix() for path in (tmp_path / "tapes").iterdir())
    assert written == sorted(file.path for file in plan["tape"].files)
    assert f"Files: {len(written)} written, 0 already there, under {tmp_path}." in output


@pytest.fixture
def local_images(tmp_path, plan):
    files_write(tmp_path, plan["tape"].files)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "local-images"), "--port", "0", "--root", str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    port = int(server.stdout.readline().rsplit(":", 1)[1].strip("/\n"))
    yield http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    server.terminate()
    server.wait(timeout=10)


def test_local_images_serves_a_tapes_mp4_as_video_mp4(local_images, plan, settings):
    planted = {ref for refs in plan["tape"].planted.values() for ref in refs}
    tape = next(tape for tape in plan["tape"].documents if str(tape["_id"]) not in planted and not tape["nuked"])
    assert settings.TAPE_MEDIA_URL == "http://127.0.0.1:8765/tapes" and settings.TAPE_MAX_BYTES == 52_428_800
    local_images.request("GET", f"/tapes/{tape['code']}.mp4")  # TAPE_MEDIA_URL's path, then the code
    response = local_images.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "video/mp4"
    assert is_mp4(response.read())
    [missing] = plan["tape"].planted["tape_mp4_missing"]
    code = next(tape["code"] for tape in plan["tape"].documents if str(tape["_id"]) == missing)
    local_images.request("GET", f"/tapes/{code}.mp4")
    response = local_images.getresponse()
    assert response.status == 404 and response.read()
