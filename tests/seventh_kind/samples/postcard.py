"""Sample ``postcards``: ``{user, greeting, to, when}``, a few per user."""

import datetime as dt

from migrator.samples import SampleContext, per_author

COLLECTION = "postcards"
INDEXES = ("user", "when")
FIGURES = {"postcards": 300, "authors": 120, "top": 12}
FIRST_DAY, LAST_DAY = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
GREETINGS = ["wish you were here", "greetings from the prompt", "happy painting", "see you in the chat 🎨", "thinking of you ✨"]
NAMES = ["jeffrey", "mom", "the class", "future me", "everyone"]


def example(number: int) -> dict:
    """A postcard's own fields that make a record (tests add ``_id``, ``when``, ``user``)."""
    return {"greeting": f"{GREETINGS[number % len(GREETINGS)]} #{number}", "to": NAMES[number % len(NAMES)]}


def documents(context: SampleContext) -> list[dict]:
    authors = context.authors(max(1, context.count(FIGURES["authors"])))
    counts = per_author(context.count(FIGURES["postcards"]), len(authors), context.count(FIGURES["top"]))
    cards = []
    for author, count in zip(authors, counts, strict=True):
        for _ in range(count):
            when = context.moment(FIRST_DAY, LAST_DAY)
            cards.append({"_id": context.object_id(when), "user": author.sub, "when": when, **example(context.rng.randrange(1000))})
    return cards
