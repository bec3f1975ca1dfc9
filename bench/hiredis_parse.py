"""What hiredis saves alsek when parsing Redis replies: is it worth a core dependency?

Two measurements, each with redis-py's pure-Python parser and with its hiredis parser:

1. Parse only: the real reply of a claim of 100 messages, and the replies of 100 acks sent in
   one pipeline, are captured from a real Redis, then parsed again and again from a local
   socket pair by each parser (the same code path as a live connection, without the server).
2. End to end: a broker claims 100 messages and acks them one by one (as a pool's threads do),
   on a throwaway Redis, with a client of each parser.

Run: ``.venv/bin/python bench/hiredis_parse.py`` (a few seconds; needs hiredis installed).
"""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from typing import Any

import redis
from redis._parsers import _HiredisParser, _RESP2Parser
from redis._parsers.encoders import Encoder

from alsek.core.broker import Broker, ClaimSource
from alsek.core.message import Message
from alsek.storage.backends.redis import RedisBackend
from alsek.testing import RedisServer

BATCH = 100
PARSE_ROUNDS = 300
E2E_ROUNDS = 60
OWNER = "lock:bench:process:1:lease:hiredis"
PARSERS: dict[str, type[Any]] = {"python": _RESP2Parser, "hiredis": _HiredisParser}


def encode_resp(value: Any) -> bytes:
    """RESP2 bytes of a decoded reply (Lua replies are bulk strings, integers, arrays, nil)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bool):
        return b":1\r\n" if value else b"$-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, str):
        data = value.encode()
        return b"$%d\r\n%s\r\n" % (len(data), data)
    if isinstance(value, (list, tuple)):
        return b"*%d\r\n" % len(value) + b"".join(encode_resp(item) for item in value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def message(i: int) -> Message:
    """A typical small message: an e-mail job with a few keyword arguments."""
    return Message(
        "send_email",
        queue="bench",
        kwargs={"to": f"user{i}@example.com", "subject": "Your report", "template": "weekly"},
    )


def captured_replies(url: str) -> tuple[bytes, bytes]:
    """(one claim reply of BATCH messages, BATCH pipelined ack replies) as raw RESP bytes."""
    broker = Broker(RedisBackend(url, namespace=f"hiredis-{uuid.uuid4().hex[:8]}"))
    broker.submit_many([message(i) for i in range(BATCH)])
    runner = broker._runner
    replies: list[list[Any]] = []
    original = runner.run_many

    def recording(calls: Any) -> list[Any]:
        output = original(calls)
        replies.append(output)
        return output

    runner.run_many = recording  # type: ignore[method-assign]
    claim = broker.claim([ClaimSource("bench")], BATCH, OWNER)
    claim_reply = next(r for r in replies if r and isinstance(r[0], list))[0]
    replies.clear()
    with broker.backend.conn.pipeline(transaction=False) as pipe:
        pipe.execute_command("PING")  # warm the connection
        pipe.execute()
    for leased in claim.messages:
        broker.ack(leased)
    ack_replies = [r[0] for r in replies]
    broker.backend.conn.flushdb()
    return encode_resp(claim_reply), b"".join(encode_resp(r) for r in ack_replies)


class _Connection:
    """What a parser reads from: a socket, its timeout and the client's encoder."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.socket_timeout = 5.0
        self.encoder = Encoder("utf-8", "strict", decode_responses=True)


def parse_seconds(parser_class: type[Any], payload: bytes, replies: int) -> float:
    """Median time to parse ``replies`` replies laid out in ``payload``."""
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * len(payload))
    parser = parser_class(socket_read_size=65536)
    parser.on_connect(_Connection(reader))
    timings = []
    for _ in range(PARSE_ROUNDS):
        writer.sendall(payload)
        started = time.perf_counter()
        for _ in range(replies):
            parser.read_response()
        timings.append(time.perf_counter() - started)
    parser.on_disconnect()
    writer.close()
    reader.close()
    return statistics.median(timings)


def client(url: str, parser_class: type[Any]) -> redis.Redis:
    pool = redis.ConnectionPool.from_url(url, decode_responses=True, parser_class=parser_class)
    return redis.Redis(connection_pool=pool)


def end_to_end_seconds(url: str) -> dict[str, float]:
    """Median time, per parser, to claim BATCH messages and ack each of them; the parsers take
    turns round after round, so that a noisy neighbour slows both alike."""
    brokers = {
        name: Broker(RedisBackend(client(url, parser), namespace=f"hiredis-{name}"))
        for name, parser in PARSERS.items()
    }
    timings: dict[str, list[float]] = {name: [] for name in PARSERS}
    for _ in range(E2E_ROUNDS):
        for name, broker in brokers.items():
            broker.submit_many([message(i) for i in range(BATCH)])
            started = time.perf_counter()
            claim = broker.claim([ClaimSource("bench")], BATCH, OWNER)
            for leased in claim.messages:
                broker.ack(leased)
            timings[name].append(time.perf_counter() - started)
            assert len(claim.messages) == BATCH
    return {name: statistics.median(values) for name, values in timings.items()}


def report(label: str, seconds: dict[str, float], per: int) -> None:
    python, fast = seconds["python"], seconds["hiredis"]
    print(
        f"{label:<42} python {python * 1e6 / per:8.1f} µs   hiredis {fast * 1e6 / per:8.1f} µs"
        f"   saved {(python - fast) * 1e6 / per:7.1f} µs per message ({python / fast:.1f}x)"
    )


def main() -> None:
    with RedisServer() as server:
        claim_bytes, ack_bytes = captured_replies(server.url)
        print(
            f"claim reply of {BATCH} messages: {len(claim_bytes):,} bytes; "
            f"{BATCH} ack replies: {len(ack_bytes):,} bytes"
        )
        for label, payload, replies in (
            ("parse: claim reply", claim_bytes, 1),
            ("parse: pipelined ack replies", ack_bytes, BATCH),
        ):
            seconds = {name: parse_seconds(p, payload, replies) for name, p in PARSERS.items()}
            report(label, seconds, BATCH)
        report("end to end: claim + ack each (real Redis)", end_to_end_seconds(server.url), BATCH)


if __name__ == "__main__":
    main()
