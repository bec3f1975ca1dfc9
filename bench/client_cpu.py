"""Client CPU per message: each lever measured alone, on and off in turns, in one run.

The machine is shared and noisy, so every figure is a pair (on, off) taken back to back, the
order flipped every pair; the report is the median of the per-pair ratios, beside the raw
figures. Levers:

* ``codec``: ``JsonSerializer``'s codec (msgspec vs the standard library) on a typical message
  body: encode and decode, in this process.
* ``generate``: one ``Task.generate`` / ``AsyncTask.generate`` per call, awaited, against a
  throwaway ``redis-server``: calls/s and client CPU µs per call, this tree against
  ``--baseline DIR`` (a copy of ``alsek/`` from another commit, e.g. ``git archive``).
* ``loop``: the async pool (``alsek async-pool``, 100 tasks), no-op backlog: uvloop vs asyncio.
* ``pool-codec``: the same pool, msgspec vs the standard library codec (``ALSEK_JSON_CODEC``).
* ``pool-baseline``: the same pool with every default (uvloop, msgspec when installed) against
  ``--baseline DIR``'s ``alsek/``.

    .venv/bin/python bench/client_cpu.py [--pairs 5] [--only LEVER] [--baseline DIR]
                                         [--calls 3000] [--messages 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from alsek.testing import RedisServer

HERE = Path(__file__).resolve().parent
ALSEK = str(Path(sys.executable).with_name("alsek"))
LEVERS = ("codec", "generate", "loop", "pool-codec", "pool-baseline")

Measure = Callable[[bool], float]


def paired(name: str, pairs: int, measure: Measure, unit: str, higher_is_better: bool) -> None:
    """Run ``measure(on)`` and ``measure(off)`` back to back ``pairs`` times, flipping the
    order, and print the figures and the median ratio (on's gain: > 1 is better)."""
    ons: list[float] = []
    offs: list[float] = []
    for index in range(pairs):
        order = (True, False) if index % 2 == 0 else (False, True)
        got = {on: measure(on) for on in order}
        ons.append(got[True])
        offs.append(got[False])
    ratios = [(a / b if higher_is_better else b / a) for a, b in zip(ons, offs, strict=True)]
    print(
        f"{name}: on {_fmt(ons)} | off {_fmt(offs)} {unit}; "
        f"median gain x{statistics.median(ratios):.2f} (pairs: {_fmt(ratios, 2)})",
        flush=True,
    )


def _fmt(values: list[float], digits: int = 1) -> str:
    return "[" + ", ".join(f"{v:.{digits}f}" for v in values) + "]"


# -- codec -------------------------------------------------------------------------------------


def codec_levers(pairs: int) -> None:
    from alsek.core.message import Message
    from alsek.storage.json_codec import STDLIB, msgspec_codec

    fast = msgspec_codec()
    if fast is None:
        print("codec: msgspec is not installed")
        return
    body = Message("noop", queue="bench", args=(1, "x"), kwargs={"a": 1.5, "b": "héllo"}).data
    text = STDLIB.dumps(body)
    count = 5_000

    def timed(function: Callable[[], Any]) -> float:
        return timeit.timeit(function, number=count) / count * 1e6

    print(f"codec: a message body of {len(text)} characters")
    paired(
        "codec encode",
        pairs,
        lambda on: timed(lambda: (fast if on else STDLIB).dumps(body)),
        "µs",
        False,
    )
    paired(
        "codec decode",
        pairs,
        lambda on: timed(lambda: (fast if on else STDLIB).loads(text)),
        "µs",
        False,
    )


# -- generate ----------------------------------------------------------------------------------

GENERATE_CODE = """
import asyncio, json, sys, time
from alsek import AsyncBroker, Broker, task
from alsek.storage.backends import AsyncRedisBackend, RedisBackend
url, kind, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])

def timed(run):
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu

if kind == "sync":
    broker = Broker(RedisBackend(url, namespace="gen"))
    @task(broker, queue="q")
    def noop() -> None: ...
    for _ in range(200): noop.generate()
    wall, cpu = timed(lambda: [noop.generate() for _ in range(calls)])
else:
    async def main():
        broker = AsyncBroker(AsyncRedisBackend(url, namespace="gen"))
        @task(broker, queue="q")
        async def noop() -> None: ...
        for _ in range(200): await noop.generate()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls): await noop.generate()
        result = time.perf_counter() - wall, time.process_time() - cpu
        await broker.backend.conn.aclose()
        return result
    wall, cpu = asyncio.run(main())
print(json.dumps({"per_second": calls / wall, "cpu_us": cpu / calls * 1e6}))
"""


def generate_levers(pairs: int, url: str, calls: int, baseline: str | None) -> None:
    if baseline is None:
        print("generate: give --baseline DIR (a copy of alsek/ to compare with)")
        return
    client = redis.Redis.from_url(url)

    def run(kind: str, on: bool) -> dict[str, float]:
        env = dict(os.environ)
        if not on:
            env["PYTHONPATH"] = baseline
        client.flushdb()
        done = subprocess.run(
            [sys.executable, "-c", GENERATE_CODE, url, kind, str(calls)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd="/",
        )
        figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures

    for kind in ("sync", "async"):
        cpu: dict[bool, list[float]] = {True: [], False: []}

        def calls_per_second(
            on: bool, kind: str = kind, cpu: dict[bool, list[float]] = cpu
        ) -> float:
            figures = run(kind, on)
            cpu[on].append(figures["cpu_us"])
            return figures["per_second"]

        paired(f"generate {kind} calls/s", pairs, calls_per_second, "calls/s", True)
        ratios = [b / a for a, b in zip(cpu[True], cpu[False], strict=True)]
        print(
            f"generate {kind} client CPU: on {_fmt(cpu[True])} | off {_fmt(cpu[False])} "
            f"µs/call; median gain x{statistics.median(ratios):.2f}",
            flush=True,
        )


# -- the async pool ----------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pool_run(
    url: str, messages: int, loop: str | None, codec: str, baseline: str | None = None
) -> tuple[float, float]:
    """Messages per second of one ``alsek async-pool`` over a no-op backlog, and its CPU µs
    per message from its first finished message on (start-up and imports left out).
    ``baseline``: run that copy of ``alsek/`` instead (``loop=None``: no ``--loop`` flag)."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([*([baseline] if baseline else []), str(HERE)]),
        BENCH_POOLS_REDIS_URL=url,
        BENCH_POOLS_NAMESPACE="cpu",
        ALSEK_JSON_CODEC=codec,
    )
    subprocess.run(
        [sys.executable, "-m", "apps.submit", "apps.alsek_async", "noop", str(messages)],
        env=env,
        check=True,
        cwd=HERE,
    )
    command = [ALSEK, "async-pool", "apps.alsek_async", "--log-level", "WARNING"]
    command += ["--loop", loop] if loop else []
    pool = subprocess.Popen(command, env=env, cwd=HERE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        first: tuple[int, float] | None = None
        while (done := int(client.get("cpu:completions:count") or 0)) < messages:
            assert time.monotonic() < deadline, "the pool did not finish its backlog in 10 min"
            assert pool.poll() is None, "the pool exited"
            if first is None and done:
                first = (done, _cpu_seconds(pool.pid))
            time.sleep(0.02)
        cpu = _cpu_seconds(pool.pid)
        times = dict(client.zrange("cpu:completions:times", 0, -1, withscores=True))
        counted, cpu_before = first or (0, 0.0)
        cpu_us = (cpu - cpu_before) / max(messages - counted, 1) * 1e6
        return messages / (times[b"last"] - times[b"first"]), cpu_us
    finally:
        pool.send_signal(signal.SIGTERM)
        pool.wait(60)


def pool_pair(name: str, pairs: int, run: Callable[[bool], tuple[float, float]]) -> None:
    """``paired`` on throughput, with the CPU per message of the same runs beside it."""
    cpu: dict[bool, list[float]] = {True: [], False: []}

    def throughput(on: bool) -> float:
        per_second, cpu_us = run(on)
        cpu[on].append(cpu_us)
        return per_second

    paired(f"{name} throughput", pairs, throughput, "msg/s", True)
    ratios = [b / a for a, b in zip(cpu[True], cpu[False], strict=True)]
    print(
        f"{name} pool CPU: on {_fmt(cpu[True])} | off {_fmt(cpu[False])} µs/msg; "
        f"median gain x{statistics.median(ratios):.2f} (pairs: {_fmt(ratios, 2)})",
        flush=True,
    )


def pool_levers(
    pairs: int, url: str, messages: int, levers: set[str], baseline: str | None
) -> None:
    if "loop" in levers:
        pool_pair(
            "async pool no-op backlog, uvloop vs asyncio",
            pairs,
            lambda on: pool_run(url, messages, "uvloop" if on else "asyncio", "auto"),
        )
    if "pool-codec" in levers:
        pool_pair(
            "async pool no-op backlog, msgspec vs stdlib codec",
            pairs,
            lambda on: pool_run(url, messages, "asyncio", "msgspec" if on else "stdlib"),
        )
    if "pool-baseline" in levers and baseline is not None:
        pool_pair(
            "async pool no-op backlog, this tree (defaults) vs --baseline",
            pairs,
            lambda on: pool_run(url, messages, None, "auto", None if on else baseline),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--only", action="append", choices=LEVERS)
    parser.add_argument("--baseline", help="a directory holding another commit's alsek/")
    parser.add_argument("--calls", type=int, default=3_000, help="generate calls per figure")
    parser.add_argument("--messages", type=int, default=5_000, help="pool backlog per figure")
    options = parser.parse_args()
    levers = set(options.only or LEVERS)
    if "codec" in levers:
        codec_levers(options.pairs)
    with RedisServer() as server:
        if "generate" in levers:
            generate_levers(options.pairs, server.url, options.calls, options.baseline)
        pool_levers(options.pairs, server.url, options.messages, levers, options.baseline)


if __name__ == "__main__":
    main()
