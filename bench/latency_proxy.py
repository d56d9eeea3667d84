#!/usr/bin/env python
"""A TCP proxy that adds a round trip's latency, for benchmarks with
production-like distances on a machine without netem.

    .venv/bin/python bench/latency_proxy.py --target 127.0.0.1:2583 --delay-ms 50 [--port 0]

Every byte from the client reaches the target half the delay later, and
every byte back reaches the client half the delay later: a request and its
answer take one delay more, as across a network. Connections and
pipelining are kept as they are (bytes are held back, never reordered or
serialised). Prints ``{"port": N}`` when ready; stops on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import json
import signal
import sys
import time


async def _delayed_copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk ``delay`` seconds after it arrived."""
    queue: asyncio.Queue = asyncio.Queue()

    async def read() -> None:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, chunk))
        queue.put_nowait((time.monotonic() + delay, b""))

    async def write() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass


async def _serve(target_host: str, target_port: int, delay: float, port: int) -> None:
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        half = delay / 2
        try:
            await asyncio.gather(
                _delayed_copy(client_reader, server_writer, half), _delayed_copy(server_reader, client_writer, half), return_exceptions=True
            )
        except asyncio.CancelledError:  # the proxy is stopping
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, required=True, help="added to every round trip")
    parser.add_argument("--port", type=int, default=0, help="where to listen on 127.0.0.1 (0: a free port)")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    asyncio.run(_serve(host or "127.0.0.1", int(port), args.delay_ms / 1000, args.port))


if __name__ == "__main__":
    sys.exit(main())
