"""utils.environment.set_alsek_worker_pool_env_var."""

from __future__ import annotations

import logging
import os

import pytest

from alsek.defaults import ALSEK_WORKER_POOL_ENV_VAR
from alsek.utils.environment import set_alsek_worker_pool_env_var


def test_sets_the_variable_to_true(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALSEK_WORKER_POOL_ENV_VAR, raising=False)
    set_alsek_worker_pool_env_var()
    assert os.environ[ALSEK_WORKER_POOL_ENV_VAR] == "true"


def test_existing_value_is_kept_and_a_warning_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(ALSEK_WORKER_POOL_ENV_VAR, "custom")
    with caplog.at_level(logging.WARNING, logger="alsek"):
        set_alsek_worker_pool_env_var()
    assert os.environ[ALSEK_WORKER_POOL_ENV_VAR] == "custom"
    assert ALSEK_WORKER_POOL_ENV_VAR in caplog.text
