"""Failover under load: pools in subprocesses run messages over several queues while the test
kills a master (or moves a busy slot), and the evidence says what was lost, run twice, and how
long the faulted queue stood still.

The producer keeps at most ``BACKLOG`` messages waiting, submitting small batches as the pools
complete others, so it submits throughout the run and writes are in flight on every side when
the fault strikes (it retries a batch an outage interrupted, with the same messages, which the
broker recognises). The tasks record their runs on a separate server (``failwork.tasks``),
which the fault does not touch.

``ALSEK_FAILOVER_MESSAGES`` sets the load (the suite's default is small; the figures in
``docs/scaling.md`` come from a run of 20 000).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from alsek.core.message import Message
from alsek.core.steps.outage import REDIS_OUTAGE_ERRORS
from tests.subprocesses import SessionProcess

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # failwork, as the pool subprocesses import it

from failwork import settings, tasks  # noqa: E402

#: Messages per run (``ALSEK_FAILOVER_MESSAGES`` for a full-size run).
MESSAGES = int(os.environ.get("ALSEK_FAILOVER_MESSAGES", "1200"))
#: Messages per submit call of the producer.
BATCH = 30
#: Most messages the producer keeps submitted but not completed.
BACKLOG = 300
#: A run is over when everything submitted completed, or nothing completed for this long (a
#: lost lease comes back after ``LEASE_TTL_MS``; a lost message never does).
QUIET_SECONDS = settings.LEASE_TTL_MS / 1000 + 6
#: The longest a run may take.
RUN_TIMEOUT_SECONDS = 180.0


@dataclass
class Figures:
    """What one failover run shows."""

    scenario: str
    wait_replicas: int
    messages: int  # submits the producer was told succeeded
    lost: int  # of those, never completed
    duplicated: int  # started more than once
    duplicated_after_fault: int  # of those, first claimed after the fault (``dead_queues``)
    in_flight_at_fault: int  # attempts claimed before the fault and not finished by it
    resume_seconds: float | None  # from the fault to the faulted queue's next completion
    fault_seconds: float  # how long the fault took to settle (failover, migration)
    seconds: float  # the whole run

    def line(self) -> str:
        """One JSON line, printed for the report."""
        return json.dumps(asdict(self))


class FailoverRun:
    """Pools, a producer and the evidence of one run, in the namespace ``namespace``.

    The ``failwork.settings`` variables must be set in this process' environment too (the
    ``failover_run`` fixture does): the producer reads them as the pools do.
    """

    def __init__(
        self, url: str, evidence_url: str, namespace: str, log_dir: Path, wait_replicas: int
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.log_dir = log_dir
        self.wait_replicas = wait_replicas
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            settings.URL_VAR: url,
            settings.NAMESPACE_VAR: namespace,
            settings.EVIDENCE_VAR: evidence_url,
            settings.WAIT_REPLICAS_VAR: str(wait_replicas),
        }
        self.evidence = redis.Redis.from_url(evidence_url, decode_responses=True)
        self.broker = tasks.broker(url)
        self.task = tasks.build(self.broker)
        self.pools: list[SessionProcess] = []
        self.submitted: list[Message] = []
        self.producer_error: BaseException | None = None

    def close(self) -> None:
        """Kill the pools, drop the evidence, close the clients."""
        for pool in self.pools:
            pool.kill_session()
        for found in self.evidence.scan_iter(match=f"{self.namespace}:*"):
            self.evidence.delete(found)
        self.evidence.close()
        self.broker.backend.conn.close()

    # -- load ------------------------------------------------------------------------------

    #: The pools of a run (two thread pools, separate processes), ``CAPACITY`` slots each.
    KINDS = ("thread", "thread")
    CAPACITY = 8

    def start_pools(self) -> None:
        for kind in self.KINDS:
            capacity = self.CAPACITY
            args = [sys.executable, "-m", "failwork.launch", kind, "--capacity", str(capacity)]
            self.pools.append(SessionProcess(f"failover-{kind}", args, self.env, self.log_dir))

    def _messages(self, total: int) -> list[list[Message]]:
        queues = settings.QUEUES
        batches = []
        for start in range(0, total, BATCH):
            queue = queues[(start // BATCH) % len(queues)]
            count = min(BATCH, total - start)
            batch = [
                self.task._generate_message(args=(start + i,), queue=queue) for i in range(count)
            ]
            batches.append(batch)
        return batches

    def _produce(self, batches: list[list[Message]]) -> None:
        try:
            for batch in batches:
                self._wait(lambda: len(self.submitted) - self._done() < BACKLOG, "the backlog")
                deadline = time.monotonic() + 60
                while True:
                    try:
                        self.broker.submit_many(batch)
                        break
                    except REDIS_OUTAGE_ERRORS:
                        assert time.monotonic() < deadline, "the producer could not submit"
                        time.sleep(0.05)  # waiting out the failover, as any producer would
                self.submitted += batch
        except BaseException as error:
            self.producer_error = error

    # -- the run ---------------------------------------------------------------------------

    def run(
        self,
        scenario: str,
        fault: Callable[[], float],
        fault_queue: str,
        total: int = MESSAGES,
        at_fraction: float = 0.3,
        dead_queues: Collection[str] = (),
    ) -> Figures:
        """Produce ``total`` messages; once ``at_fraction`` of them completed, ``fault()``
        (which returns how long it took to settle); then wait until every message completed
        or the run went quiet.

        ``dead_queues``: queues whose master the fault kills. Nobody can claim from them until
        the failover settles, so an attempt of theirs that started before then was claimed
        before the kill: in flight at the kill, though its body may have started a few ms after
        the kill's timestamp (a loaded machine). Without ``wait_replicas`` its claim may not
        have reached the replica, so it may run again: an expected duplicate.
        """
        started = time.monotonic()
        self.start_pools()
        producer = threading.Thread(target=self._produce, args=(self._messages(total),))
        producer.start()
        self._wait(lambda: self._done() >= total * at_fraction, "the load to build up")
        fault_at = tasks.now_ms()
        fault_seconds = fault()
        producer.join(RUN_TIMEOUT_SECONDS)
        assert self.producer_error is None, f"the producer failed: {self.producer_error!r}"
        for pool in self.pools:
            assert pool.alive, f"{pool.name} died\n{pool.output(3000)}"
        self._wait_until_done_or_quiet()
        claimed_by = {queue: fault_at + int(fault_seconds * 1000) for queue in dead_queues}
        return self._figures(scenario, fault_at, claimed_by, fault_seconds, fault_queue, started)

    def _wait(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while not check():
            assert self.producer_error is None, f"the producer failed: {self.producer_error!r}"
            assert time.monotonic() < deadline, f"{what}: not within {RUN_TIMEOUT_SECONDS} s"
            time.sleep(0.02)

    def wait_for_progress(self, completions: int, patience_seconds: float) -> None:
        """Wait until ``completions`` more messages completed (or every submitted one did), for
        at most ``patience_seconds`` (nothing may complete while a fault lasts)."""
        goal = min(self._done() + completions, len(self.submitted))
        give_up = time.monotonic() + patience_seconds
        self._wait(
            lambda: self._done() >= goal or time.monotonic() >= give_up, "progress or patience"
        )

    def _done(self) -> int:
        return int(self.evidence.zcard(tasks.key("done")))

    def _wait_until_done_or_quiet(self) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            done = self._done()
            if done >= len(self.submitted):
                return
            if done != last:
                last, last_change = done, time.monotonic()
            elif time.monotonic() - last_change >= QUIET_SECONDS:
                return
            time.sleep(0.05)

    def _figures(
        self,
        scenario: str,
        fault_at: int,
        claimed_by: dict[str, int],
        fault_seconds: float,
        fault_queue: str,
        started: float,
    ) -> Figures:
        done = set(self.evidence.zrange(tasks.key("done"), 0, -1))
        counts = self.evidence.hgetall(tasks.key("runs"))
        runs = {uuid: int(count) for uuid, count in counts.items()}
        starts: dict[str, list[int]] = {}
        for member, at in self.evidence.zrange(tasks.key("starts"), 0, -1, withscores=True):
            starts.setdefault(member.rsplit(":", 1)[0], []).append(int(at))
        finished = dict(self.evidence.zrange(tasks.key("done"), 0, -1, withscores=True))
        queue_of = {message.uuid: message.queue for message in self.submitted}

        def before_fault(uuid: str, at: int) -> bool:
            """Whether an attempt that started at ``at`` was claimed before the fault."""
            return at <= claimed_by.get(queue_of.get(uuid, ""), fault_at)

        in_flight = sum(
            1
            for uuid, times in starts.items()
            if any(before_fault(uuid, at) for at in times)
            and finished.get(uuid, float("inf")) > fault_at
        )
        repeated = [uuid for uuid, count in runs.items() if count > 1]
        after = self.evidence.zrangebyscore(
            tasks.key("done", fault_queue), fault_at, "+inf", start=0, num=1, withscores=True
        )
        return Figures(
            scenario=scenario,
            wait_replicas=self.wait_replicas,
            messages=len(self.submitted),
            lost=sum(1 for message in self.submitted if message.uuid not in done),
            duplicated=len(repeated),
            duplicated_after_fault=sum(
                1 for uuid in repeated if not before_fault(uuid, min(starts[uuid]))
            ),
            in_flight_at_fault=in_flight,
            resume_seconds=round((after[0][1] - fault_at) / 1000, 3) if after else None,
            fault_seconds=round(fault_seconds, 3),
            seconds=round(time.monotonic() - started, 1),
        )

    def details(self) -> str:
        """The pools' output, for a failure message."""
        return "\n".join(pool.output(3000) for pool in self.pools)


def report(figures: Figures) -> None:
    """Print the figures (pytest -s shows them; the report quotes them)."""
    print(f"\nfailover: {figures.line()}")


def keep_server_logs(servers: Any, log_dir: Path) -> None:
    """Copy the log of every data server and sentinel of ``servers`` into ``log_dir`` (the
    pools' output is there already): the evidence of a failover (``+switch-master``, role
    changes) outlives the servers' directories."""
    for server in (*servers.servers, *getattr(servers, "sentinels", ())):
        directory = server.directory
        if directory is not None and (directory / "server.log").exists():
            kind = "sentinel" if server.sentinel else "server"
            target = log_dir / f"{kind}-{server.port}.log"
            target.write_bytes((directory / "server.log").read_bytes())


def kill_and_restart(servers: Any, **which: Any) -> Callable[[], float]:
    """A fault: SIGKILL a master of ``servers`` (a cluster or Sentinel harness; ``which``
    picks it), then restart it as a replica, as an operator would. Returns the failover time."""

    def fault() -> float:
        failover = servers.kill_master(**which)
        servers.restart_as_replica(failover.killed)
        return float(failover.seconds)

    return fault


def check_master_killed(run: FailoverRun, figures: Figures, wait_replicas: int) -> None:
    """What a killed master may cost: the queue resumes; with ``wait_replicas`` nothing
    acknowledged is lost and only attempts in flight at the kill run twice."""
    report(figures)
    assert figures.messages == MESSAGES
    assert figures.resume_seconds is not None, run.details()
    if wait_replicas:
        assert figures.lost == 0, _lost_details(run, figures)
        assert figures.duplicated <= len(FailoverRun.KINDS) * FailoverRun.CAPACITY
        # Claims wait for replicas too: a claim a second failover could undo (a stalled new
        # master replaced again, seen on loaded runs) was never handed out, so no message
        # first claimed after the kill runs twice.
        assert figures.duplicated_after_fault == 0, run.details()


def _lost_details(run: FailoverRun, figures: Figures) -> str:
    """Why messages may have been lost: a failover outliving the pools' leases says so."""
    lease_seconds = settings.LEASE_TTL_MS / 1000
    outlived = (
        f"the failover ({figures.fault_seconds} s) outlived the pools' lease ({lease_seconds} s)"
        f": see failwork.settings.LEASE_TTL_MS\n"
        if figures.fault_seconds >= lease_seconds
        else ""
    )
    return outlived + run.details()


def run_with(runner: Any, *args: Any, **kwargs: Any) -> Figures:
    """``runner.run(...)``, closing the runner whatever happens."""
    try:
        return runner.run(*args, **kwargs)  # type: ignore[no-any-return]
    finally:
        runner.close()
