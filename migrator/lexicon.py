"""The lexicons under settings.LEXICON_DIR, and validation of records against
them before any write: the PDS does not check our lexicon, so this does.

Covers what our lexicons use: objects with required fields and no unknown
ones, strings (maxLength in UTF-8 bytes, minLength, format uri/datetime),
integers, booleans, arrays and blobs (accept, maxSize). Also the evolution
rules a published lexicon must keep.
"""

import json
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from atproto_client.models.blob_ref import BlobRef
from django.conf import settings

_URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
# RFC 3339 with a mandatory timezone, as the ATProto datetime format requires.
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_CID_RE = re.compile(r"^b[a-z2-7]{50,}$")


class InvalidRecord(ValueError):
    """A record that does not match its lexicon; ``problems`` lists each reason."""

    def __init__(self, nsid: str, problems: list[str]):
        super().__init__(f"invalid {nsid} record: " + "; ".join(problems))
        self.nsid = nsid
        self.problems = problems


def lexicons_load(directory: Path | None = None) -> dict[str, dict]:
    """Every lexicon document under ``directory`` (default LEXICON_DIR), by NSID."""
    directory = Path(directory or settings.LEXICON_DIR)
    paths = tuple(sorted(directory.rglob("*.json")))
    # Validation runs per record: parse again only when a file changed.
    return dict(_load(paths, tuple(path.stat().st_mtime_ns for path in paths)))


@lru_cache(maxsize=8)
def _load(paths: tuple[Path, ...], _mtimes: tuple[int, ...]) -> tuple[tuple[str, dict], ...]:
    documents = []
    for path in paths:
        document = json.loads(path.read_text())
        documents.append((document["id"], document))
    return tuple(documents)


def record_validate(record: dict, *, nsid: str | None = None, lexicons: dict[str, dict] | None = None) -> None:
    """Raises InvalidRecord unless ``record`` matches lexicon ``nsid``
    (default the painting; the engine always names its kind's)."""
    nsid = nsid or settings.PAINTING_COLLECTION
    problems = record_problems(record, nsid=nsid, lexicons=lexicons)
    if problems:
        raise InvalidRecord(nsid, problems)


def record_problems(record: dict, *, nsid: str, lexicons: dict[str, dict] | None = None) -> list[str]:
    """What is wrong with ``record`` for lexicon ``nsid``: [] when nothing is."""
    document = (lexicons or lexicons_load()).get(nsid)
    if document is None:
        return [f"no lexicon {nsid} under {settings.LEXICON_DIR}"]
    main = document["defs"]["main"]
    if main.get("type") != "record":
        return [f"{nsid} is not a record lexicon"]
    record = dict(record)
    record_type = record.pop("$type", nsid)
    problems = [] if record_type == nsid else [f"$type is {record_type!r}, not {nsid!r}"]
    return problems + _object_problems(record, main["record"], path="")


def _object_problems(value, schema: dict, *, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path or 'record'}: must be an object"]
    properties = schema.get("properties", {})
    problems = [f"{path}{name}: required" for name in schema.get("required", []) if value.get(name) is None]
    problems += [f"{path}{name}: not in the lexicon" for name in value if name not in properties]
    for name, item in value.items():
        if name in properties and item is not None:
            problems += _value_problems(item, properties[name], path=f"{path}{name}")
    return problems


def _value_problems(value, schema: dict, *, path: str) -> list[str]:
    kind = schema.get("type")
    check = _CHECKS.get(kind)
    if check is None:
        return [f"{path}: type {kind!r} is not supported by this validator"]
    return check(value, schema, path)


def _string_problems(value, schema: dict, path: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{path}: must be a string"]
    problems = []
    size = len(value.encode("utf-8"))
    if "maxLength" in schema and size > schema["maxLength"]:
        problems.append(f"{path}: {size} bytes, more than maxLength {schema['maxLength']}")
    if "minLength" in schema and size < schema["minLength"]:
        problems.append(f"{path}: {size} bytes, less than minLength {schema['minLength']}")
    format_problem = _FORMATS.get(schema.get("format"), lambda _: "")(value)
    if format_problem:
        problems.append(f"{path}: {format_problem}")
    return problems


def uri_problem(value: str) -> str:
    """What keeps ``value`` from being a lexicon ``uri``: "" when nothing."""
    return "" if _URI_RE.match(value) else f"{value!r} is not a URI"


_uri_problem = uri_problem


def _datetime_problem(value: str) -> str:
    if not _DATETIME_RE.match(value):
        return f"{value!r} is not an RFC 3339 datetime with a timezone"
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r} is not a real date and time"
    return ""


_FORMATS = {"uri": _uri_problem, "datetime": _datetime_problem}


def _integer_problems(value, schema: dict, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"{path}: must be an integer"]
    if "minimum" in schema and value < schema["minimum"]:
        return [f"{path}: {value} is below the minimum {schema['minimum']}"]
    if "maximum" in schema and value > schema["maximum"]:
        return [f"{path}: {value} is above the maximum {schema['maximum']}"]
    return []


def _boolean_problems(value, schema: dict, path: str) -> list[str]:
    return [] if isinstance(value, bool) else [f"{path}: must be a boolean"]


def _array_problems(value, schema: dict, path: str) -> list[str]:
    if not isinstance(value, list):
        return [f"{path}: must be an array"]
    problems = []
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(f"{path}: {len(value)} items, more than maxLength {schema['maxLength']}")
    for index, item in enumerate(value):
        problems += _value_problems(item, schema.get("items", {}), path=f"{path}[{index}]")
    return problems


def _blob_problems(value, schema: dict, path: str) -> list[str]:
    blob = _blob_json(value)
    if blob is None:
        return [f"{path}: must be a blob (a BlobRef or {{'$type': 'blob', 'ref': {{'$link': cid}}, ...}})"]
    problems = []
    mime_type, size = blob.get("mimeType"), blob.get("size")
    if not isinstance(blob.get("ref"), dict) or not _CID_RE.match(str(blob["ref"].get("$link", ""))):
        problems.append(f"{path}: the blob's ref is not a CID link")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problems.append(f"{path}: the blob's size is not a byte count")
    elif "maxSize" in schema and size > schema["maxSize"]:
        problems.append(f"{path}: {size} bytes, more than maxSize {schema['maxSize']}")
    if "accept" in schema and not _accepted(mime_type, schema["accept"]):
        problems.append(f"{path}: mimeType {mime_type!r} is not one of {', '.join(schema['accept'])}")
    return problems


def _blob_json(value) -> dict | None:
    if isinstance(value, BlobRef):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict) and value.get("$type") == "blob":
        return value
    return None


def _accepted(mime_type, accept: list[str]) -> bool:
    if not isinstance(mime_type, str):
        return False
    return any(
        pattern == "*/*" or pattern == mime_type or (pattern.endswith("/*") and mime_type.startswith(pattern[:-1]))
        for pattern in accept
    )


_CHECKS = {
    "string": _string_problems,
    "integer": _integer_problems,
    "boolean": _boolean_problems,
    "array": _array_problems,
    "blob": _blob_problems,
    "object": lambda value, schema, path: _object_problems(value, schema, path=path + "."),
}


def breaking_changes(published: dict, local: dict) -> list[str]:
    """How ``local`` breaks the evolution rules against ``published``: a
    required field removed or made optional, a new required field, a type
    changed. Optional fields may be added."""
    problems = []
    for def_name, old_def in published.get("defs", {}).items():
        new_def = local.get("defs", {}).get(def_name)
        if new_def is None:
            problems.append(f"#{def_name}: removed")
            continue
        problems += _object_changes(_object_schema(old_def), _object_schema(new_def), f"#{def_name}")
    return problems


def _object_schema(definition: dict) -> dict:
    return definition.get("record", definition) if definition.get("type") == "record" else definition


def _object_changes(old: dict, new: dict, where: str) -> list[str]:
    if old.get("type") != new.get("type"):
        return [f"{where}: type changed from {old.get('type')} to {new.get('type')}"]
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    problems = [f"{where}.{name}: required field removed or made optional" for name in sorted(old_required - new_required)]
    problems += [f"{where}.{name}: new required field" for name in sorted(new_required - old_required)]
    new_properties = new.get("properties", {})
    for name, old_property in old.get("properties", {}).items():
        new_property = new_properties.get(name)
        if new_property is not None:
            problems += _object_changes(old_property, new_property, f"{where}.{name}")
    return problems
