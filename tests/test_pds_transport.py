"""migrator.pds.transport: the SDK's calls sent with urllib3.

Against a small HTTP server of the test's own (real sockets, real HTTP/1.1
keep-alive), because what is checked here is what the reference PDS does
not do on demand: answer 429 or 502, redirect, stall, or count the
connections it was opened. The SDK's client and namespaces are the real
ones; the calls made through the real PDS are in test_pds_records,
test_pds_sessions and test_pds_rate_limits."""

import json
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from atproto_client import models

from migrator.pds import errors, limits, transport
from migrator.pds.client import sdk_client
from migrator.pds.errors import PdsError

DESCRIBE = {"did": "did:web:pds.test", "availableUserDomains": [".test"]}
LIMITS = {"ratelimit-limit": "3000", "ratelimit-remaining": "2999", "ratelimit-reset": "4102444800", "ratelimit-policy": "3000;w=300"}


class Server(ThreadingHTTPServer):
    """Answers every request with ``reply`` (status, headers, JSON body),
    counting the connections that carried a request and the requests it
    read. A connection that sends nothing is not counted: the port is one
    the system handed out again, and another test's process (CI runs two
    legs at once) may still connect to an address it used and hang up."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections, self.requests, self.paths = 0, 0, []
        self.reply = (200, LIMITS, DESCRIBE)
        self.stall = threading.Event()
        self.stall.set()  # cleared: hold every answer until set

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the PDS

    carried_a_request = False

    def do_GET(self):
        if not self.carried_a_request:
            self.carried_a_request = True
            self.server.connections += 1
        self.server.requests += 1
        self.server.paths.append(self.path)
        self.server.stall.wait(5)
        status, headers, body = self.server.reply
        content = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json; charset=utf-8", **headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.do_GET()

    def log_message(self, *arguments):
        pass


@pytest.fixture
def server():
    server = Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.stall.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fresh_pool():
    """Each test starts as a new process does: no connection open."""
    transport._process_pool = None
    yield
    transport._process_pool = None


def describe(url: str, meter: limits.Meter | None = None, *, timeout: float = 5.0):
    return sdk_client(meter, base_url=url, timeout=timeout).com.atproto.server.describe_server()


def failure_of(call) -> PdsError:
    with pytest.raises(Exception) as raised:
        call()
    return errors.classify(raised.value, "describe the server")


def test_every_client_of_a_process_shares_its_connections(server):
    # An account's client used to open connections of its own: a run over a
    # thousand accounts connected a thousand times, each a cost to the PDS too.
    socket.create_connection(server.server_address).close()  # a stray connection, as from another test's process
    for _ in range(5):
        client = sdk_client(base_url=server.url)
        assert client.com.atproto.server.describe_server().did == DESCRIBE["did"]
        assert client.com.atproto.server.describe_server().did == DESCRIBE["did"]
        client.request.close()  # as the session cache closes an account's client
    assert (server.requests, server.connections) == (10, 1)


def test_more_calls_at_once_than_the_pool_holds_wait_their_turn(server, caplog):
    server.stall.clear()  # every answer held, so the calls overlap
    calls = transport.POOL_CONNECTIONS + 4
    threads = [threading.Thread(target=describe, args=(server.url,)) for _ in range(calls)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    server.stall.set()
    for thread in threads:
        thread.join(10)
    assert server.requests == calls
    assert server.connections == transport.POOL_CONNECTIONS  # none opened past it, then thrown away
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_forked_worker_opens_connections_of_its_own(server):
    describe(server.url)
    child = os.fork()
    if child == 0:  # the child: a call on the parent's socket would cross their answers
        try:
            describe(server.url)
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert describe(server.url).did == DESCRIBE["did"]  # the parent's connection still answers it
    assert (server.requests, server.connections) == (3, 2)


def test_queries_are_written_as_the_sdks_own_layer_wrote_them(server):
    server.reply = (200, {}, {"records": []})
    params = models.ComAtprotoRepoListRecords.Params(repo="did:plc:abc", collection="computer.aesthetic.painting", limit=5, reverse=True)
    sdk_client(base_url=server.url).com.atproto.repo.list_records(params)
    [path] = server.paths
    route, query = path.split("?")
    assert route == "/xrpc/com.atproto.repo.listRecords"
    # No cursor (None is left out), the boolean as true, the DID's colons escaped.
    assert sorted(query.split("&")) == ["collection=computer.aesthetic.painting", "limit=5", "repo=did%3Aplc%3Aabc", "reverse=true"]


@pytest.mark.parametrize(
    "status, error, kind",
    [
        (400, "InvalidRequest", errors.PERMANENT),
        (401, "AuthenticationRequired", errors.PERMANENT),
        (413, "PayloadTooLarge", errors.PERMANENT),
        (409, "", errors.TRANSIENT),
        (500, "InternalServerError", errors.TRANSIENT),
        (502, "", errors.TRANSIENT),
        (503, "", errors.TRANSIENT),
    ],
)
def test_a_failure_is_classified_by_its_status_and_xrpc_error(server, status, error, kind):
    server.reply = (status, {}, {"error": error, "message": "as the PDS says it"} if error else {})
    failure = failure_of(lambda: describe(server.url))
    assert (failure.kind, failure.status, failure.error) == (kind, status, error)
    if error:
        assert failure.message == f"describe the server: {status} {error}: as the PDS says it"


def test_an_expired_token_reads_as_one_a_refresh_fixes(server):
    server.reply = (400, {}, {"error": "ExpiredToken", "message": "Token has expired"})
    assert errors.is_token_error(failure_of(lambda: describe(server.url)))


def test_a_429_is_rate_limited_and_its_headers_teach_the_budget(server):
    budgets = limits.Budgets()
    headers = {**LIMITS, "ratelimit-remaining": "0", "retry-after": "7"}
    server.reply = (429, headers, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
    failure = failure_of(lambda: describe(server.url, limits.Meter(budgets=budgets)))
    assert (failure.kind, failure.retry_after) == (errors.RATE_LIMITED, 7.0)
    [budget] = budgets._budgets.values()
    assert (budget.limit, budget.remaining, budget.window) == (3000, 0, 300)


def test_a_success_teaches_the_budget_too(server):
    budgets = limits.Budgets()
    describe(server.url, limits.Meter(budgets=budgets))
    [budget] = budgets._budgets.values()
    assert (budget.limit, budget.remaining) == (3000, 2999)


def test_a_redirect_is_not_followed_so_the_token_goes_nowhere_else(server):
    elsewhere = Server()
    threading.Thread(target=elsewhere.serve_forever, args=(0.05,), daemon=True).start()
    try:
        server.reply = (302, {"location": f"{elsewhere.url}/xrpc/com.atproto.server.describeServer"}, {})
        failure = failure_of(lambda: describe(server.url))
        assert failure.status == 302
        assert elsewhere.requests == 0
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()


def test_a_proxy_in_the_environment_is_not_used(server, monkeypatch):
    proxy = Server()
    threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert describe(server.url).did == DESCRIBE["did"]
        assert (proxy.requests, server.requests) == (0, 1)
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_nothing_listening_is_transient_with_no_response(server):
    url = server.url
    server.shutdown()
    server.server_close()
    failure = failure_of(lambda: describe(url))
    assert (failure.kind, failure.status) == (errors.TRANSIENT, None)
    assert failure.message == "describe the server: no response (NewConnectionError)"


def test_an_answer_that_never_comes_times_out_as_transient(server):
    server.stall.clear()
    failure = failure_of(lambda: describe(server.url, timeout=0.3))
    assert (failure.kind, failure.status) == (errors.TRANSIENT, None)
    assert failure.message == "describe the server: no response (ReadTimeoutError)"
