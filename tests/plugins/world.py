"""A small migration world, all real: SecantusDB for MongoDB, the local
reference PDS with fresh accounts, and PNG files served over HTTP.

    world.paintings  -- the MongoDB documents, by ref
    world.records()  -- every painting record on the PDS, by ref (a list each)
"""

import datetime as dt
import functools
import itertools
import secrets
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bson import ObjectId

from migrator.sample import ImageJob, render_image, timestamp_slug
from tests.plugins.pds import create_test_account

_numbers = itertools.count(1)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def static_images(tmp_path, settings):
    """A folder served over HTTP at the real storage's URL shape."""
    root = tmp_path / "images"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings.USER_MEDIA_URL, settings.GUEST_MEDIA_URL, settings.TAPE_MEDIA_URL = f"{base}/media", f"{base}/guest", f"{base}/tapes"
    settings.IMAGE_REDIRECT_ORIGINS = []
    yield root
    server.shutdown()
    server.server_close()


@dataclass
class World:
    mongo: object
    images: Path
    anonymous_did: str
    users: dict = field(default_factory=dict)  # handle -> TestAccount
    paintings: dict = field(default_factory=dict)  # ref -> document
    missing: list = field(default_factory=list)  # refs whose image is absent
    documents: dict = field(default_factory=dict)  # ref -> document of the other kinds

    def add_painting(self, *, handle: str | None = None, image: bool = True, size=(96, 64), **fields) -> str:
        """Insert a painting (a user's, or a guest's when ``handle`` is None)."""
        number = next(_numbers)
        when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=number, milliseconds=number)
        document = {"_id": ObjectId(), "code": f"t{number}", "slug": timestamp_slug(when), "when": when, **fields}
        if handle:
            document["user"] = self.users[handle].sub
        self.mongo.paintings.insert_one(document)
        ref = str(document["_id"])
        self.paintings[ref] = document
        folder = self.images / ("media" / Path(f"@{handle}") / "painting" if handle else Path("guest"))
        if image:
            folder.mkdir(parents=True, exist_ok=True)
            image_slug = document["slug"].split(":")[0]
            (folder / f"{image_slug}.png").write_bytes(render_image(ImageJob("x", *size, seed=number)))
        else:
            self.missing.append(ref)
        return ref

    def add_document(self, kind, *, handle: str | None = None, **fields) -> str:
        """Insert a document of ``kind`` (a user's, or a guest's when
        ``handle`` is None): ``fields`` as given, plus ``_id``, a distinct
        ``when`` and the owner."""
        number = next(_numbers)
        when = dt.datetime(2024, 2, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=number, milliseconds=number)
        document = {"_id": ObjectId(), "when": when, **fields}
        if handle:
            document["user"] = self.users[handle].sub
        self.mongo[kind.mongodb_collection].insert_one(document)
        ref = str(document["_id"])
        self.documents[ref] = document
        return ref

    def records(self, kind=None) -> dict[str, list]:
        """Every record of ``kind`` (paintings by default) in every account
        of the world, by ref."""
        from django.conf import settings

        from migrator import pds

        from migrator.models import Account

        collection = kind.nsid if kind is not None else settings.PAINTING_COLLECTION
        anonymous = Account.objects.get(did=self.anonymous_did)
        found = defaultdict(list)
        accounts = [(anonymous.did, anonymous.password), *((user.did, user.password) for user in self.users.values())]
        for did, password in accounts:
            repo = pds.repo_for(did=did, password=password)
            cursor = None
            while True:
                page, cursor = repo.records_list(collection=collection, limit=100, cursor=cursor)
                for record in page:
                    found[record.value["ref"]].append(record)
                if not cursor:
                    break
        return found


def add_user(world: World, name: str) -> None:
    account = create_test_account(prefix=name)
    account.sub = f"auth0|{secrets.token_hex(12)}"
    world.users[name] = account
    world.mongo.users.insert_one({"_id": account.sub, "atproto": {"did": account.did, "handle": account.handle, "password": account.password}})
    world.mongo["@handles"].insert_one({"_id": account.sub, "handle": name})


@pytest.fixture
def world(mongo_db, pds, static_images, settings):
    """Two users and the anonymous account on the local PDS; no paintings
    yet (tests add their own with ``world.add_painting``)."""
    return make_world(mongo_db, static_images, settings)


def make_world(mongo_db, static_images, settings) -> World:
    """Two users and the anonymous account on the PDS settings point at."""
    from migrator import pds as pds_module

    settings.ANON_HANDLE = f"anon{next(_numbers)}x{secrets.token_hex(3)}{settings.PDS_HANDLE_DOMAIN}"
    anonymous_did, _ = pds_module.account_ensure(handle=settings.ANON_HANDLE, anonymous=True)
    created = World(mongo=mongo_db, images=static_images, anonymous_did=anonymous_did)
    for name in ("ann", "bo"):
        add_user(created, f"{name}{next(_numbers)}")
    return created
