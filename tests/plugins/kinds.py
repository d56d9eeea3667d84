"""Documents of each kind for tests: a good one (``document_fields``) and
its media on the test image server (``media_put``), from the kind's sample
data module (``migrator.samples.<kind>``: ``example`` and ``media``)."""

import importlib


def _samples(kind):
    return importlib.import_module(f"migrator.samples.{kind.name}")


def document_fields(kind, number: int) -> dict:
    """The fields (besides ``_id``, ``when`` and ``user``) of a document of
    ``kind`` that makes a record; ``number`` makes it distinct."""
    return _samples(kind).example(number)


def media_put(world, kind, document: dict) -> None:
    """Put the document's media (a tape's MP4) where the test image server
    serves it, for the kinds that have any."""
    media = getattr(_samples(kind), "media", None)
    if media is None:
        return
    for path, content in media(document).items():
        target = world.images / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
