"""The news post: a ``news-posts`` document becomes a
``computer.aesthetic.news`` record: its ``title`` the headline, its
``text`` the body, its ``url`` the link, and its tags. No blob. News always
has an author.

MongoDB's fields: ``title`` non-empty text of at most the lexicon's 300
bytes; ``text`` (optional) text of at most 10,000; ``url`` (optional) a URI;
``tags`` (optional) a list of at most 10 texts of at most 64 bytes each;
``when`` a date; ``user`` the author's auth0 sub. A dead post (``status:
"dead"``, hidden on the site) has no record; a deleted post's document is
removed: the full seed finds it gone and its record is removed. The key
is written back to ``atproto.rkey``, with ``uri`` and ``did``.
"""

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from migrator.kinds import (
    DocumentFields, Problem, RecordKind, common_fields, common_problem, datetime_string, digest, lexicon_limits, lexicon_shape, shown,
    text_of, text_problem,
)  # fmt: skip
from migrator.lexicon import uri_problem
from migrator.models import SkipReason

NSID = "computer.aesthetic.news"
RECORD_BUILD = 1  # raise it when ``news_record`` changes records already written
MAX_TAGS = 10  # the lexicon's tags maxLength
MAX_TAG = 64  # each tag's


@dataclass(frozen=True, kw_only=True)
class NewsFields(DocumentFields):
    """``nuked`` is a dead post (``status: "dead"``: hidden on aesthetic.computer)."""

    headline: str
    body: str
    link: str
    tags: tuple[str, ...]
    guests: ClassVar[bool] = False  # news always has an author


def news_read(document: dict) -> NewsFields:
    tags = document.get("tags")
    return NewsFields(
        **{**common_fields(document, key_document="atproto", author_of="post"), "nuked": document.get("status") == "dead"},
        headline=text_of(document.get("title")), body=text_of(document.get("text")), link=text_of(document.get("url")),
        tags=tuple(tag for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else (),
    )  # fmt: skip


def news_problem(document: dict, fields: NewsFields, *, duplicate_of: str | None = None) -> Problem | None:
    limits = lexicon_limits(NSID)
    return (
        common_problem(document, fields, key_field="atproto.rkey")
        or text_problem(document, "title", shown_as="headline", limit=limits["headline"])
        or text_problem(document, "text", shown_as="body", limit=limits["body"], required=False)
        or _link_problem(document)
        or _tags_problem(document)
    )


def _link_problem(document: dict) -> Problem | None:
    url = document.get("url")
    if url is None or url == "":
        return None
    if not isinstance(url, str):
        return Problem(SkipReason.BAD_FIELD, f"`url` is {shown(url)}, not text.")
    problem = uri_problem(url)
    return Problem(SkipReason.BAD_FIELD, f"The link (`url`) is not a URI: {url[:80]!r}.") if problem else None


def _tags_problem(document: dict) -> Problem | None:
    tags = document.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list):
        return Problem(SkipReason.BAD_FIELD, f"`tags` is {shown(tags)}, not a list.")
    if len(tags) > MAX_TAGS:
        return Problem(SkipReason.TOO_LONG, f"The post has {len(tags)} tags; the lexicon allows {MAX_TAGS}.")
    for tag in tags:
        if not isinstance(tag, str):
            return Problem(SkipReason.BAD_FIELD, f"A tag is {shown(tag)}, not text.")
        if len(tag.encode("utf-8", "surrogatepass")) > MAX_TAG:
            return Problem(SkipReason.TOO_LONG, f"The tag {tag[:20]!r}… is {len(tag.encode('utf-8', 'surrogatepass'))} bytes of UTF-8; the lexicon allows {MAX_TAG}.")
    return None


def _content(fields: NewsFields) -> dict:
    """The post's own fields as the state table keeps them (cut just past
    the lexicon's limits: a longer one is skipped anyway)."""
    limits = lexicon_limits(NSID)
    return {
        "headline": fields.headline[: limits["headline"] + 1], "body": fields.body[: limits["body"] + 1],
        "link": fields.link[:2048], "tags": [tag[: MAX_TAG + 1] for tag in fields.tags[: MAX_TAGS + 1]],
    }  # fmt: skip


def row_values(fields: NewsFields) -> dict:
    return {"label": " ".join(fields.headline.split())[:255], "content": _content(fields)}


def fingerprint(values: Mapping[str, Any]) -> str:
    when = values["when"]
    dead = "dead" if values["nuked"] else ""
    return digest(json.dumps(values["content"], sort_keys=True), datetime_string(when) if when else "", dead, values["owner"])


def news_record(*, ref: str, content: dict, when: dt.datetime) -> dict:
    record = {"$type": NSID, "headline": content.get("headline", ""), "when": datetime_string(when)}
    if content.get("body"):
        record["body"] = content["body"]
    if content.get("link"):
        record["link"] = content["link"]
    if content.get("tags"):
        record["tags"] = list(content["tags"])
    record["ref"] = ref
    return record


def record_from_row(row, *, has_recording: bool, blob) -> dict:
    return news_record(ref=row.ref, content=row.content, when=row.when)


def record_from_source(fields: NewsFields, *, handle: str, has_recording: bool, blob) -> dict:
    return news_record(ref=fields.ref, content=_content(fields), when=fields.when)


KIND = RecordKind(
    name="news",
    plural="news",
    nsid=NSID,
    mongodb_collection="news-posts",
    fields=("_id", "title", "text", "url", "tags", "user", "when", "status", "atproto"),
    key_fields=("rkey", "uri", "did"),
    compared_fields=("ref", "headline", "when", "body", "link", "tags"),
    read=news_read,
    row_values=row_values,
    problem=news_problem,
    fingerprint=fingerprint,
    record_from_row=record_from_row,
    record_from_source=record_from_source,
    record_shape=lambda: lexicon_shape(NSID, str(RECORD_BUILD)),
    deleted_why=lambda: "The post is dead in MongoDB (status \"dead\": hidden on aesthetic.computer)",
    label_name="headline",
)
