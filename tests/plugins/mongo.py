"""A real MongoDB wire-protocol server (SecantusDB), one per test session.

Tests reach it only through pymongo and ``settings.MONGODB_URI``, exactly as
the product reaches production MongoDB. Each test gets a database of its own.
"""

import itertools

import pytest
from pymongo import MongoClient

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def mongo_server():
    from secantus import SecantusDBServer

    with SecantusDBServer(storage_path=":memory:") as server:
        yield server


@pytest.fixture(scope="session")
def mongo_client(mongo_server):
    client = MongoClient(mongo_server.uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def mongo_db(mongo_server, mongo_client, settings):
    """An empty database, but for its (empty) ``paintings`` collection, as
    aesthetic.computer's has, and the settings that point the product at it."""
    name = f"test_{next(_database_numbers)}"
    settings.MONGODB_URI = mongo_server.uri
    settings.MONGODB_DB = name
    mongo_client[name].create_collection("paintings")
    yield mongo_client[name]
    mongo_client.drop_database(name)
