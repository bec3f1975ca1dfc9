"""One run of each kind on the benchmark's Redis: a pool over a backlog or a trickle, single
submits, and submit → start latency at idle.

Every run starts from an empty namespace and an empty completion tally, and counts what the
tasks report (``apps.completions``), so every framework is timed the same way.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis
from _common import BENCH_DIR, Bench, BenchRedis
from apps import completions, settings

from poolbench.children import Child, Producer, WorkerFailed, stop
from poolbench.costs import command_stats, cpu_seconds, redis_cpu_seconds
from poolbench.records import LatencyRun, PoolRun, SubmitRun
from poolbench.setups import App, LatencyProbe, Setup, Submitter

#: How often the benchmark reads the completion tally (the figures come from the tasks' own
#: clock readings, so this only decides how soon a finished run is noticed).
POLL_SECONDS = 0.02
#: A run that has not finished by ``BASE_TIMEOUT_SECONDS + messages / SLOWEST_RATE`` failed.
BASE_TIMEOUT_SECONDS = 60
SLOWEST_RATE = 50
#: No-op messages each producer sends before it is timed: connections, scripts, first claims.
WARMUP_MESSAGES = 20
#: Pause between two latency messages: long enough for the pool to be idle again, drawn at
#: random so that it does not beat in time with a poll interval.
LATENCY_GAP_MS = (5.0, 15.0)


class Runner:
    """Runs workers and producers on the benchmark's Redis."""

    def __init__(self, server: BenchRedis, namespace: str, scratch: Path) -> None:
        self.server = server
        self.conn = redis.Redis.from_url(server.url)
        self.namespace = namespace
        self.scratch = scratch

    # -- the four kinds of run ---------------------------------------------------------------

    def pool(self, setup: Setup, task: str, mode: str, count: int) -> PoolRun:
        """One run of ``setup`` over ``count`` messages of ``task`` in ``mode``."""
        if mode == "backlog":
            return self.backlog(setup, task, count)
        return self.trickle(setup, task, count)

    def backlog(self, setup: Setup, task: str, count: int) -> PoolRun:
        """Queue ``count`` messages (untimed), start the workers, time them."""
        with self._fresh():
            env = self.env(setup.tracking)
            for app, share in _shares(setup.apps, count):
                submitter = Child([*app.producer, task, str(share)], env, self._log("submit"))
                submitter.process.wait()
                submitter.check("queuing the backlog", may_finish=True)
            self.conn.config_resetstat()
            redis_before = redis_cpu_seconds(self.conn)
            launched = time.time()
            workers = self._start_workers(setup, task, env)
            try:
                return self._measure(count, workers, [], launched, redis_before)
            finally:
                stop(workers)

    def trickle(self, setup: Setup, task: str, count: int) -> PoolRun:
        """Start the workers; once warm, submit ``count`` messages one at a time, awaited."""
        with self._fresh():
            env = self.env(setup.tracking)
            workers = self._start_workers(setup, task, env)
            producers: list[Producer] = []
            try:
                producers = self._start_producers(setup.apps, task, count, "one-by-one", env)
                deadline = _deadline(count)
                self._warm_up(workers, producers, deadline)
                self.conn.config_resetstat()
                redis_before = redis_cpu_seconds(self.conn)
                launched = time.time()
                for producer in producers:
                    producer.go()
                run = self._measure(count, workers, producers, launched, redis_before)
                run.submit_seconds = max(p.result(deadline)["seconds"] for p in producers)
                return run
            finally:
                stop([*workers, *producers])

    def submits(self, submitter: Submitter, count: int) -> SubmitRun:
        """``count`` single submits, each awaited, with no worker running."""
        with self._fresh():
            [producer] = self._start_producers(
                [submitter.app], "noop", count, "one-by-one", self.env()
            )
            try:
                deadline = _deadline(count)
                producer.wait_ready(deadline)
                self.conn.config_resetstat()
                redis_before = redis_cpu_seconds(self.conn)
                producer.go()
                result = producer.result(deadline)
                redis_seconds = redis_cpu_seconds(self.conn) - redis_before
                calls, usec = command_stats(self.conn)
            finally:
                stop([producer])
        return SubmitRun(
            count, result["seconds"], result["cpu_seconds"], redis_seconds, calls, usec
        )

    def latency(self, probe: LatencyProbe, count: int) -> LatencyRun:
        """``count`` latency messages to the idle pool of ``probe``, one every 5 to 15 ms."""
        setup = probe.setup
        with self._fresh():
            env = self.env(setup.tracking)
            workers = self._start_workers(setup, "latency", env)
            producers: list[Producer] = []
            try:
                producers = self._start_producers(setup.apps, "latency", count, "paced", env)
                deadline = _deadline(count) + count * LATENCY_GAP_MS[1] / 1000
                self._warm_up(workers, producers, deadline)
                for producer in producers:
                    producer.go()
                self._wait_done(count, workers, producers, deadline)
                samples = completions.latencies(self.conn, self.namespace)
            finally:
                stop([*workers, *producers])
        return LatencyRun([seconds * 1000 for seconds in samples])

    # -- the parts they share ----------------------------------------------------------------

    def env(self, tracking: bool = False) -> dict[str, str]:
        """The environment of the producers and workers of a run."""
        path = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        env[settings.URL_VAR] = self.server.url
        env[settings.NAMESPACE_VAR] = self.namespace
        env.pop(settings.TRACKING_VAR, None)
        if tracking:
            env[settings.TRACKING_VAR] = "1"
        return env

    @contextlib.contextmanager
    def _fresh(self) -> Iterator[None]:
        """An empty namespace (deleted afterwards) and an empty tally."""
        with Bench(self.server, quick=False).namespace("pools"):
            completions.reset(self.conn, self.namespace)
            yield

    def _log(self, *parts: str) -> Path:
        return self.scratch / ("-".join(parts) + ".log")

    def _start_workers(self, setup: Setup, task: str, env: dict[str, str]) -> list[Child]:
        return [
            Child(worker.argv, env, self._log(setup.name, task, str(index)))
            for index, worker in enumerate(setup.workers)
        ]

    def _start_producers(
        self, apps: Sequence[App], task: str, count: int, mode: str, env: dict[str, str]
    ) -> list[Producer]:
        low, high = LATENCY_GAP_MS
        options = ["--mode", mode, "--warmup", str(WARMUP_MESSAGES)]
        options += ["--gap-min-ms", str(low), "--gap-max-ms", str(high)]
        return [
            Producer(
                [*app.producer, task, str(share), *options],
                env,
                self._log(Path(app.name).name, mode, task),
            )
            for app, share in _shares(apps, count)
        ]

    def _warm_up(self, workers: list[Child], producers: list[Producer], deadline: float) -> None:
        """Wait until every producer is warm and the workers have run its warm-up messages,
        then forget those messages."""
        for producer in producers:
            producer.wait_ready(deadline)
        self._wait_done(WARMUP_MESSAGES * len(producers), workers, [], deadline)
        completions.reset(self.conn, self.namespace)

    def _wait_done(
        self,
        count: int,
        workers: Sequence[Child],
        producers: Sequence[Producer],
        deadline: float,
        on_first: list[tuple[float, float, float]] | None = None,
    ) -> tuple[float, float]:
        """Poll the tally until ``count`` messages are done; ``(first, last)`` finish times.

        ``on_first`` gets (monotonic time, workers' CPU, Redis CPU) when the first is seen.
        """
        while True:
            done, first, last = completions.read(self.conn, self.namespace)
            if done and on_first is not None and not on_first:
                pids = [worker.pid for worker in workers]
                on_first.append((time.monotonic(), cpu_seconds(pids), redis_cpu_seconds(self.conn)))
            if done >= count and first is not None and last is not None:
                return first, last
            progress = f"{done} of {count} messages"
            for worker in workers:
                worker.check(progress)
            for producer in producers:
                producer.check(progress, may_finish=True)
            if time.monotonic() > deadline:
                tail = next(iter([*workers, *producers])).tail()
                raise WorkerFailed(f"only {progress} done in time:\n{tail}")
            time.sleep(POLL_SECONDS)

    def _measure(
        self,
        count: int,
        workers: list[Child],
        producers: list[Producer],
        launched: float,
        redis_before: float,
    ) -> PoolRun:
        """Wait for ``count`` messages, and what they cost from the first one on."""
        window: list[tuple[float, float, float]] = []
        first, last = self._wait_done(count, workers, producers, _deadline(count), window)
        redis_now = redis_cpu_seconds(self.conn)
        calls, usec = command_stats(self.conn)
        started, worker_cpu, redis_cpu = window[0]
        return PoolRun(
            count=count,
            launched=launched,
            first=first,
            last=last,
            worker_cpu_seconds=cpu_seconds([w.pid for w in workers]) - worker_cpu,
            redis_cpu_seconds=redis_now - redis_cpu,
            cpu_window_seconds=time.monotonic() - started,
            redis_cpu_total_seconds=redis_now - redis_before,
            redis_calls=calls,
            redis_usec=usec,
        )


def _deadline(count: int) -> float:
    return time.monotonic() + BASE_TIMEOUT_SECONDS + count / SLOWEST_RATE


def _shares(apps: Sequence[App], count: int) -> list[tuple[App, int]]:
    """``count`` split evenly over ``apps``."""
    return [
        (app, count // len(apps) + (index < count % len(apps))) for index, app in enumerate(apps)
    ]
