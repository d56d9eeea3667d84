"""The TLS context every HTTPS client of the console uses: one per process.

Left to itself each new HTTP client loads the CA bundle again, ~35 ms of CPU:
with an account per few paintings that was a quarter of the migration's own
CPU time. The trust store is certifi's, as requests and httpx use by default.

Built once even when a worker's threads all open their first connection at
the same moment (``functools.cache`` would let each of them build one: eight
CA bundles, 150 ms, per worker), and ``backfill`` builds it before forking,
so its workers inherit it.
"""

import ssl
import threading

import certifi

_context: ssl.SSLContext | None = None
_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = ssl.create_default_context(cafile=certifi.where())
    return _context
