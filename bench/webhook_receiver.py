#!/usr/bin/env python
"""A fast local webhook receiver for the benchmark: asyncio, minimal HTTP/1.1 with keep-alive, one process.

  python bench/webhook_receiver.py PORT SECRET [--verify-every N]

Answers every POST with ``200 ok`` and verifies the ``Commerce-Signature`` of one request in ``N`` (default 20)
with ``webhooks.signing.verify`` against SECRET. ``GET /stats`` answers JSON ``{"requests", "verified",
"bad_signatures"}``. Python's ``http.server`` (a thread per connection, the header parser of ``email``) tops
out near 360 req/s here, which made the benchmark measure the receiver; this one answers several thousand,
so the delivery figure measures Tally. Only what httpx sends is understood: ``Content-Length`` bodies (a
chunked request gets 400 and the connection is closed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webhooks import signing  # noqa: E402 - after the path set-up; imports no Django

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Stats:
    def __init__(self, secret: str, verify_every: int) -> None:
        self.secret, self.verify_every = secret, max(1, verify_every)
        self.requests = self.verified = self.bad_signatures = 0

    def post(self, headers: dict[str, str], body: bytes) -> None:
        self.requests += 1
        if self.requests % self.verify_every:
            return
        try:
            signing.verify(body, headers.get(signing.HEADER.lower(), ""), self.secret)
            self.verified += 1
        except signing.SignatureVerificationError:
            self.bad_signatures += 1

    def document(self) -> bytes:
        body = json.dumps({"requests": self.requests, "verified": self.verified,
                           "bad_signatures": self.bad_signatures}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body), body)


class Receiver(asyncio.Protocol):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.transport.write(BAD)
                self.transport.close()
                return
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body is still on its way
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.answer(lines[0].split(" ")[0], headers, body)

    def answer(self, method: str, headers: dict[str, str], body: bytes) -> None:
        if method == "GET":
            self.transport.write(self.stats.document())
        else:
            self.stats.post(headers, body)
            self.transport.write(OK)
        if headers.get("connection", "").lower() == "close":
            self.transport.close()


async def serve(host: str, port: int, secret: str, verify_every: int) -> None:
    stats = Stats(secret, verify_every)
    server = await asyncio.get_running_loop().create_server(lambda: Receiver(stats), host, port, backlog=1024,
                                                            reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verify-every", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.secret, args.verify_every))


if __name__ == "__main__":
    main()
