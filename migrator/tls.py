"""The TLS context every HTTPS client of the console uses: one per process.

Left to itself each new HTTP client loads the CA bundle again, ~35 ms of CPU:
with an account per few paintings that was a quarter of the migration's own
CPU time. The trust store is certifi's, as requests and httpx use by default.
"""

import ssl
from functools import cache

import certifi


@cache
def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())
