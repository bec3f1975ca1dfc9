"""alsek.core: ALSEK_MULTIPROCESSING_BACKEND picks where Process/Queue/Event come from."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

import alsek.core


def _run_with_backend(value: str | None, code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ALSEK_MULTIPROCESSING_BACKEND", None)
    if value is not None:
        env["ALSEK_MULTIPROCESSING_BACKEND"] = value
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_standard_backend_exports_multiprocessing_names() -> None:
    assert alsek.core.Process is multiprocessing.Process
    assert alsek.core.Queue == multiprocessing.Queue
    assert alsek.core.Event == multiprocessing.Event


def test_from_import_works() -> None:
    from alsek.core import Event, Process, Queue

    assert (Process, Queue, Event) == (
        multiprocessing.Process,
        multiprocessing.Queue,
        multiprocessing.Event,
    )


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Pool'"):
        alsek.core.Pool  # noqa: B018


def test_explicit_standard_value_is_accepted() -> None:
    code = "import multiprocessing, alsek.core as c; print(c.Process is multiprocessing.Process)"
    result = _run_with_backend("standard", code)
    assert result.stdout.strip() == "True", result.stderr


def test_unknown_backend_raises_import_error_naming_the_value() -> None:
    result = _run_with_backend("threads", "import alsek.core")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "ALSEK_MULTIPROCESSING_BACKEND='threads' is not supported" in result.stderr


def test_torch_backend_is_not_imported_until_used() -> None:
    code = "import sys, alsek.core; print('torch' in sys.modules)"
    result = _run_with_backend("torch", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
