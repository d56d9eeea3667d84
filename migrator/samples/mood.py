"""Sample ``moods``: what aesthetic.computer's ``POST /api/mood`` writes
(system/netlify/functions/mood.mjs): ``{user, mood, when}``, the mood
trimmed, always by a user with a handle. ``{"nuke": true}`` sets
``deleted: true`` on all of a user's moods at once (and ``false`` again), so
deleted moods come a whole user at a time.

At scale 1.0: 2,730 moods by 978 users, @jeffrey 226 (the notes' figures).
"""

import datetime as dt

from migrator.samples import SampleContext, per_author, plant_bad_id_and_missing_when

COLLECTION = "moods"
INDEXES = ("user", "when")
FIGURES = {"moods": 2730, "authors": 978, "top": 226}
FIRST_DAY = dt.datetime(2023, 7, 9, tzinfo=dt.UTC)  # mood.mjs is dated 23.07.09
LAST_DAY = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
MAX_LENGTH = 5000  # the lexicon's maxLength, in UTF-8 bytes

FEELINGS = ["sleepy", "happy", "calm", "wired", "cozy", "lost", "hungry", "sad", "focused", "silly", "grateful", "tired", "curious", "bored", "excited"]
THINGS = ["painting", "coding", "the rain", "lo-fi", "a new brush", "kidlisp", "tea", "my cat", "the sunset", "homework", "a melody"]
EMOJI = ["🌙", "✨", "🎨", "☕", "🌧️", "🔥", "💤", "🙂", "🎶", "🐈"]
SHAPES = ["{feeling}", "feeling {feeling}", "{feeling} {emoji}", "{feeling} and {feeling}", "thinking about {thing}", "{emoji}", "just {thing}", "{feeling} after {thing}"]
# Valid moods a naive byte or character count gets wrong: right-to-left
# scripts, emoji joined into one glyph, combining accents.
UNICODE_MOODS = ["مزاجي جيد اليوم 🌙", "שמח מאוד", "👩‍👩‍👧‍👦 family day", "café ☕ naïve ñ", "気分はいい 🎨"]


def mood_text(context: SampleContext) -> str:
    rng = context.rng
    shape = rng.choice(SHAPES)
    return shape.format(feeling=rng.choice(FEELINGS), thing=rng.choice(THINGS), emoji=rng.choice(EMOJI)).strip()


def documents(context: SampleContext) -> list[dict]:
    authors = context.authors(max(1, context.count(FIGURES["authors"])))
    counts = per_author(context.count(FIGURES["moods"]), len(authors), context.count(FIGURES["top"]))
    moods = []
    for author, count in zip(authors, counts):
        for _ in range(count):
            when = context.moment(FIRST_DAY, LAST_DAY)
            moods.append({"_id": context.object_id(when), "user": author.sub, "mood": mood_text(context), "when": when})
    _nuke_some_users(context, moods, authors[1:], counts[1:])
    _plant_edge_cases(context, moods)
    return moods


def _nuke_some_users(context: SampleContext, moods: list[dict], authors, counts) -> None:
    """A few users with a mood or two nuked them all (``deleted: true``); a
    few others nuked and restored theirs (``deleted: false``)."""
    light = [author.sub for author, count in zip(authors, counts, strict=True) if count <= 3]
    how_many = max(1, len(authors) // 100)
    picked = context.rng.sample(light, k=min(len(light), how_many + how_many // 2))
    nuked, restored = set(picked[:how_many]), set(picked[how_many:])
    for mood in moods:
        if mood["user"] in nuked:
            mood["deleted"] = True
        elif mood["user"] in restored:
            mood["deleted"] = False


def _plant_edge_cases(context: SampleContext, moods: list[dict]) -> None:
    if len(moods) < 20:
        return
    [too_long, too_many_bytes, missing, null, number, listed] = context.pick(moods, 6, _live)
    too_long["mood"] = ("feeling long " * 400)[: MAX_LENGTH + 1]
    context.plant("mood_too_long", too_long["_id"])
    # 1,251 characters but 5,004 bytes: over a limit counted in bytes.
    too_many_bytes["mood"] = "🌙" * (MAX_LENGTH // 4 + 1)
    context.plant("mood_too_many_bytes", too_many_bytes["_id"])
    del missing["mood"]
    context.plant("mood_missing", missing["_id"])
    null["mood"] = None
    context.plant("mood_null", null["_id"])
    number["mood"], listed["mood"] = 42, ["happy", "sad"]
    context.plant("mood_not_text", number["_id"])
    context.plant("mood_not_text", listed["_id"])
    for mood, text in zip(context.pick(moods, len(UNICODE_MOODS), _live), UNICODE_MOODS):
        mood["mood"] = text
        context.plant("mood_unicode", mood["_id"])
    plant_bad_id_and_missing_when(context, moods, bad_id=f"mood-{context.rng.getrandbits(32):08x}")


def _live(mood: dict) -> bool:
    """Planted cases go to moods no one deleted, so that each is met."""
    return "deleted" not in mood


def example(number: int) -> dict:
    """A mood's own fields that make a record (tests add ``_id``, ``when``, ``user``)."""
    return {"mood": f"{FEELINGS[number % len(FEELINGS)]} {EMOJI[number % len(EMOJI)]} #{number}"}
