"""Sample ``tapes`` and their MP4s.

A tape is posted as a ZIP of frames; track-tape.mjs
(system/netlify/functions/track-tape.mjs) writes ``{code, slug, when,
bucket, nuked: false, mp4Status: "pending"}``, plus ``user`` for a logged-in
user (32 of production's 35 tapes are by guests). The oven (oven/baker.mjs)
turns the frames into an MP4, stores it on the media storage as
``tapes/{code}.mp4`` (with ``tapes/{code}-thumb.jpg``) in the
at-blobs-aesthetic-computer bucket, and its callback
(system/netlify/functions/oven-complete.mjs) sets ``mp4Url``,
``thumbnailUrl``, ``mp4Status: "complete"`` and ``mp4CompletedAt``, or
``mp4Status: "oven-failed"`` with ``mp4Error``. A tape's record key goes to
``at: {rkey, uri, cid}`` (system/backend/tape-atproto.mjs).

The sample's MP4s go to ``tapes/{code}.mp4`` under the images folder, which
bin/local-images serves as TAPE_MEDIA_URL; ``mp4Url`` holds production's
URL, as a real document would.
"""

import datetime as dt
import io
import zipfile

from migrator.sample import timestamp_slug
from migrator.samples import SampleContext, SampleFile, per_author, plant_bad_id_and_missing_when, short_codes
from migrator.samples.mp4 import mp4_bytes

COLLECTION = "tapes"
INDEXES = ("code", "slug", "user", "when")
FIGURES = {"tapes": 35, "by_users": 3, "authors": 2, "top": 2, "nuked": 2}
FIRST_DAY = dt.datetime(2025, 10, 17, tzinfo=dt.UTC)  # track-tape.mjs is dated 25.10.17
LAST_DAY = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
STORAGE_URL = "https://at-blobs-aesthetic-computer.sfo3.digitaloceanspaces.com/tapes"
MP4_BYTES = (2_000, 20_000)  # production's average 180 KB, kept small here
# Far below TAPE_MAX_BYTES's default (50 MB, which no test should write):
# the tests lower the setting under it.
LARGE_MP4_BYTES = 300_000
PIECES = ["wand", "prompt", "notepat", "line", "rect", "starfield", "bleep", "whistlegraph", "spray", "melody"]


def documents(context: SampleContext) -> list[dict]:
    total = context.count(FIGURES["tapes"])
    authors = context.authors(max(1, context.count(FIGURES["authors"])), atproto_only=True)
    counts = per_author(min(total, context.count(FIGURES["by_users"])), len(authors), context.count(FIGURES["top"]))
    owners = [author.sub for author, count in zip(authors, counts) for _ in range(count)] + [None] * (total - sum(counts))
    code = short_codes(context)
    tapes, mp4s = [], {}
    for owner in owners:
        tape = _tape(context, owner, next(code))
        tapes.append(tape)
        mp4s[tape["code"]] = mp4_bytes(context.rng.getrandbits(32), context.rng.randint(*MP4_BYTES))
    for tape in context.rng.sample(tapes, k=min(len(tapes), context.count(FIGURES["nuked"]))):
        tape["nuked"] = True
    _plant_edge_cases(context, tapes, mp4s)
    context.files.extend(SampleFile(mp4_path(code), content) for code, content in mp4s.items())
    return tapes


def mp4_path(code: str) -> str:
    """Where a tape's MP4 is, relative to the images folder (and to the storage's bucket)."""
    return f"tapes/{code}.mp4"


def _tape(context: SampleContext, owner: str | None, code: str) -> dict:
    when = context.moment(FIRST_DAY, LAST_DAY)
    baked = when + dt.timedelta(seconds=context.rng.uniform(20, 600))
    tape = {
        "_id": context.object_id(when), "code": code, "slug": f"{context.rng.choice(PIECES)}-{timestamp_slug(when)}", "when": when,
        "bucket": "user-aesthetic-computer" if owner else "art-aesthetic-computer", "nuked": False,
        "mp4Status": "complete", "mp4Url": f"{STORAGE_URL}/{code}.mp4", "thumbnailUrl": f"{STORAGE_URL}/{code}-thumb.jpg",
        "mp4CompletedAt": baked.replace(microsecond=baked.microsecond // 1000 * 1000),
    }  # fmt: skip
    if owner:
        tape["user"] = owner
    return tape


def frames_zip(seed: int) -> bytes:
    """A tape's ZIP of frames, as posted: what a wrong upload leaves where the MP4 should be."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in (("timing.json", f'[{{"frame": 0, "duration": 16, "seed": {seed}}}]'), ("frame-00000.png", "\x89PNG")):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 10, 17, 0, 0, 0)), content)
    return buffer.getvalue()


def _plant_edge_cases(context: SampleContext, tapes: list[dict], mp4s: dict[str, bytes]) -> None:
    if len(tapes) < 10:
        return
    [missing, not_mp4, large, unbaked] = context.pick(tapes, 4, lambda tape: not tape["nuked"])
    del mp4s[missing["code"]]  # the document says complete; the storage has no file
    context.plant("tape_mp4_missing", missing["_id"])
    mp4s[not_mp4["code"]] = frames_zip(context.rng.getrandbits(32))
    context.plant("tape_not_mp4", not_mp4["_id"])
    mp4s[large["code"]] = mp4_bytes(context.rng.getrandbits(32), LARGE_MP4_BYTES)
    context.plant("tape_large", large["_id"])
    del mp4s[unbaked["code"]]
    for name in ("mp4Url", "thumbnailUrl", "mp4CompletedAt"):
        del unbaked[name]
    unbaked.update(mp4Status="oven-failed", mp4Error="ffmpeg exited with code 1")
    context.plant("tape_not_baked", unbaked["_id"])
    plant_bad_id_and_missing_when(context, tapes, bad_id=f"tape-{context.rng.getrandbits(64):016x}")


def example(number: int) -> dict:
    """A tape's own fields that make a record (tests add ``_id``, ``when``,
    ``user``); ``media`` gives its MP4."""
    code = f"tp{number}"
    return {"code": code, "slug": f"{PIECES[number % len(PIECES)]}-2025.10.23.12.30.{number % 60:02d}.123", "nuked": False, "mp4Status": "complete"}


def media(document: dict) -> dict[str, bytes]:
    """The files the media storage holds for a tape: its MP4 (none for a
    tape without a usable code)."""
    code = document.get("code")
    if not isinstance(code, str) or not code.isalnum():
        return {}
    return {mp4_path(document["code"]): mp4_bytes(len(document["code"]) * 7919 + sum(map(ord, document["code"])), 4_000)}
