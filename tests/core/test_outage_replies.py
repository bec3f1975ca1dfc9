"""Which refusals are an outage to wait out: redis-py giving up on a slot half-way through a
migration (TRYAGAIN or ASK until its redirections ran out) is one; a script's error is not."""

from __future__ import annotations

from redis.exceptions import ClusterError, ResponseError, TryAgainError

from alsek.core.steps.outage import is_unavailable_reply


def test_redirections_run_out_during_a_migration_is_an_outage() -> None:
    assert is_unavailable_reply(ClusterError("TTL exhausted."))
    assert is_unavailable_reply(TryAgainError("Multiple keys request during rehashing of slot"))


def test_a_script_error_is_the_callers_answer() -> None:
    assert not is_unavailable_reply(ResponseError("ERR Error running script: bad argument"))
