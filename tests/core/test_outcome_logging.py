"""What the worker logs when a run fails: a retry is one WARNING line, a failure for good one
ERROR line with the traceback (the stand-ins are the plan tests')."""

from __future__ import annotations

import logging

import pytest

from alsek.core.future.outcome import error_plan, run_plan
from tests.core.test_outcome_plans import StandInTask, running


def raised(error: BaseException) -> BaseException:
    """``error`` as a task raises it: with a traceback."""
    try:
        raise error
    except BaseException as caught:
        return caught


def outcome_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "alsek.core.future.outcome"]


def test_a_failure_for_good_logs_its_traceback_at_error_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="alsek")
    message = running(retries=2)
    run_plan(error_plan(StandInTask(max_retries=2), message, raised(ValueError("bad input"))))
    (record,) = outcome_records(caplog)
    assert record.levelno == logging.ERROR
    assert message.summary in record.getMessage()
    assert "ValueError: bad input" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is not None
    assert "in raised" in caplog.text  # the frame that raised it
    assert caplog.text.count("Traceback (most recent call last)") == 1


def test_a_retry_logs_one_warning_without_the_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="alsek")
    message = running(retries=0)
    run_plan(error_plan(StandInTask(max_retries=2), message, raised(ValueError("bad input"))))
    (record,) = outcome_records(caplog)
    assert record.levelno == logging.WARNING
    assert "ValueError: bad input" in record.getMessage()
    assert record.exc_info is None
    assert "Traceback" not in caplog.text


def test_a_stop_that_raised_nothing_logs_no_empty_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="alsek")
    message = running(retries=2)
    run_plan(error_plan(StandInTask(max_retries=2), message, TimeoutError("Stopped process 7")))
    (record,) = outcome_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is None
    assert "NoneType" not in caplog.text
