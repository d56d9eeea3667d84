"""Sample ``news-posts``: what news.aesthetic.computer's submit writes
(system/netlify/functions/news-api.mjs): ``{code, title, url, text, user,
when, updated, score, commentCount, status: "live"}``; ``url`` and ``text``
are "" when the post has none (a url without a scheme gets https://), the
title is at most 200 characters and the text 5,000. The backfill
(at/scripts/atproto/backfill-news-to-atproto.mjs) maps title to headline,
text to body, url to link, and reads ``when`` as a date or a string. Posts
always have an author. ``tags``: the lexicon has them and
system/backend/news-atproto.mjs passes them on, but no writer we read sets
them; the sample gives some posts a list of strings.

At scale 1.0: 40 posts by 5 users, @jeffrey most.
"""

import datetime as dt

from migrator.samples import SampleContext, per_author, plant_bad_id_and_missing_when, short_codes

COLLECTION = "news-posts"
INDEXES = ("code", "user", "when", "status")
FIGURES = {"posts": 40, "authors": 5, "top": 18}
FIRST_DAY = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)  # news-api.mjs is dated 2026.01.15
LAST_DAY = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)
MAX_TAGS, MAX_TAG = 10, 64
TOPICS = ["brush", "piece", "kidlisp", "tape", "painting", "mood", "notepat", "prompt", "wand", "jam"]
HEADLINES = ["New {topic} out today", "How I made a {topic}", "Show: my first {topic}", "Ask: a better {topic}?", "{topic} tips", "Fixed: {topic} on phones"]
TAGS = ["release", "howto", "show", "ask", "bug", "music", "art", "kidlisp", "community"]


def documents(context: SampleContext) -> list[dict]:
    authors = context.authors(max(1, context.count(FIGURES["authors"])), atproto_only=True)
    counts = per_author(context.count(FIGURES["posts"]), len(authors), context.count(FIGURES["top"]))
    code = short_codes(context)
    posts = [_post(context, author.sub, f"n{next(code)}") for author, count in zip(authors, counts) for _ in range(count)]
    _plant_edge_cases(context, posts)
    return posts


def _post(context: SampleContext, user: str, code: str) -> dict:
    rng = context.rng
    topic = rng.choice(TOPICS)
    when = context.moment(FIRST_DAY, LAST_DAY)
    post = {
        "_id": context.object_id(when), "code": code, "title": _headline(rng.choice(HEADLINES).format(topic=topic)),
        "url": f"https://aesthetic.computer/{topic}" if rng.random() < 0.4 else "",
        "text": " ".join([f"Some words about the {topic}."] * rng.randint(1, 30)) if rng.random() < 0.7 else "",
        "user": user, "when": when, "updated": when, "score": rng.randint(1, 40), "commentCount": rng.randint(0, 12), "status": "live",
    }  # fmt: skip
    if rng.random() < 0.4:
        post["tags"] = rng.sample(TAGS, k=rng.randint(1, 4))
    return post


def _plant_edge_cases(context: SampleContext, posts: list[dict]) -> None:
    if len(posts) < 20:
        return
    [many_tags, long_tag, bad_url, untitled, string_when, dead] = context.pick(posts, 6)
    many_tags["tags"] = [f"tag{number}" for number in range(MAX_TAGS + 1)]
    context.plant("news_too_many_tags", many_tags["_id"])
    long_tag["tags"] = ["t" * (MAX_TAG + 1)]
    context.plant("news_tag_too_long", long_tag["_id"])
    bad_url["url"] = "see my profile"
    context.plant("news_url_not_uri", bad_url["_id"])
    del untitled["title"]
    context.plant("news_title_missing", untitled["_id"])
    string_when["when"] = string_when["when"].isoformat()
    context.plant("news_when_not_date", string_when["_id"])
    dead["status"] = "dead"  # taken down on the site, the document kept
    context.plant("news_dead", dead["_id"])
    plant_bad_id_and_missing_when(context, posts, bad_id=f"news-{context.rng.getrandbits(32):08x}")


def _headline(text: str) -> str:
    return text[:1].upper() + text[1:]


def example(number: int) -> dict:
    """A post's own fields that make a record (tests add ``_id``, ``when``, ``user``)."""
    topic = TOPICS[number % len(TOPICS)]
    return {
        "code": f"n{number}", "title": f"New {topic} out today #{number}", "text": f"All about the {topic}.",
        "url": f"https://aesthetic.computer/{topic}" if number % 2 == 0 else "", "tags": [TAGS[number % len(TAGS)]] if number % 3 else [],
        "status": "live",
    }  # fmt: skip
