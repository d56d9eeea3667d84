"""The SDK's HTTP layer, on urllib3 instead of httpx.

The atproto SDK sends every call through a ``Request`` object; the client
keeps the SDK (its namespaces, models, sessions and token refresh) and gives
it this one. Measured against the local PDS, an upload cost the console
0.7 to 1.1 ms of CPU through httpx and 0.4 to 0.5 ms here, the SDK's own
models a negligible part of either. And each account's client opened its
own connections; here one keep-alive pool per process serves every
account's client, so a run over a thousand accounts connects a few times,
not a thousand (each connection a cost to the PDS too).

What the SDK expects back is kept: its ``Response`` for a success, and for a
failure the same exception, by status, that its own layer raises (with the
XRPC error parsed), so ``errors.classify`` reads both alike. What differs,
on purpose: nothing comes from the environment (no proxy, no .netrc, no CA
override, as for images), redirects are never followed (a PDS call that
redirects is an error, and the session's token goes nowhere else), and
nothing is retried here (``calls.call`` decides what to retry).
"""

import os
import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

import urllib3
from atproto_client import exceptions
from atproto_client.models.common import XrpcError
from atproto_client.models.utils import get_or_create, load_json
from atproto_client.request import RequestBase, Response
from pydantic_core import from_json

from migrator.tls import tls_context

# Connections per PDS address and process: a worker calls from one thread,
# create_sample_accounts from --workers threads (4). A ninth call at once
# waits for a connection to come back (at most the request's timeout).
POOL_CONNECTIONS = 8

_pool_lock = threading.Lock()
_process_pool: tuple[int, urllib3.PoolManager] | None = None  # (pid, pool)


def _pool() -> urllib3.PoolManager:
    """The process's pool; a forked worker makes its own (sockets inherited
    across a fork must not be shared with the parent)."""
    global _process_pool
    current = _process_pool
    if current is None or current[0] != os.getpid():
        with _pool_lock:  # only to make it: no lock on the way of every call
            if _process_pool is None or _process_pool[0] != os.getpid():
                manager = urllib3.PoolManager(num_pools=4, maxsize=POOL_CONNECTIONS, block=True, retries=False, ssl_context=tls_context())
                _process_pool = (os.getpid(), manager)
            current = _process_pool
    return current[1]


class Transport(RequestBase):
    """A ``Request`` for the SDK's client. ``timeout``: seconds for each
    step of a request (connecting, then each read). ``on_response(path,
    headers)`` is told of every answer, success or failure."""

    def __init__(self, *, timeout: float, on_response: Callable[[str, Mapping[str, str]], None] | None = None) -> None:
        super().__init__()
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._on_response = on_response

    def _new_instance(self) -> "Transport":
        return type(self)(timeout=self._timeout.connect_timeout, on_response=self._on_response)

    def get(self, url: str, *, params: dict | None = None, headers: dict | None = None, **_) -> Response:
        return self._send("GET", url, params=params, headers=headers)

    def post(
        self, url: str, *, params: dict | None = None, content: bytes | None = None, data: bytes | None = None, headers: dict | None = None, **_
    ) -> Response:
        return self._send("POST", url, params=params, headers=headers, body=content if content is not None else data)

    def close(self) -> None:
        """Nothing to close: the connections belong to the process's pool."""

    def _send(self, method: str, url: str, *, params: dict | None, headers: dict | None, body: bytes | None = None) -> Response:
        if params:
            url = f"{url}?{_query(params)}"
        try:
            reply = _pool().request(
                method,
                url,
                body=body,
                headers=self.get_headers(headers),
                timeout=self._timeout,
                pool_timeout=self._timeout.connect_timeout,
                redirect=False,
                preload_content=True,
            )
        except urllib3.exceptions.NewConnectionError as error:  # a timeout to urllib3, but nothing waited
            raise exceptions.NetworkError from error
        except urllib3.exceptions.TimeoutError as error:
            raise exceptions.InvokeTimeoutError from error
        except urllib3.exceptions.HTTPError as error:
            raise exceptions.NetworkError from error
        if self._on_response:
            self._on_response(urllib3.util.parse_url(url).path or "", reply.headers)
        headers = {key.lower(): value for key, value in reply.headers.items()}
        if not 200 <= reply.status <= 299:
            raise _failure(reply.status, reply.data, headers)
        content = reply.data
        if "application/json" in headers.get("content-type", "").lower():
            content = from_json(content)
        return Response(success=True, status_code=reply.status, content=content, headers=headers)


def _query(params: dict) -> str:
    """As httpx writes a query: a list as the name repeated, booleans as
    true/false, None left out."""
    pairs = []
    for name, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None:
                continue
            pairs.append((name, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return urlencode(pairs)


def _failure(status: int, body: bytes, headers: dict[str, str]) -> exceptions.RequestErrorBase:
    """The exception the SDK's own layer raises for this answer."""
    response = Response(success=False, status_code=status, content=body, headers=headers)
    parsed = load_json(body, strict=False)
    if parsed:
        response.content = get_or_create(parsed, XrpcError, strict=False)
    if status in (401, 403):
        return exceptions.UnauthorizedError(response)
    if status == 400:
        return exceptions.BadRequestError(response)
    if status == 429:
        return exceptions.RateLimitExceededError(response)
    if status in (409, 413, 502):
        return exceptions.NetworkError(response)
    return exceptions.RequestException(response)
