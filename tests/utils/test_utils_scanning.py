"""utils.scanning: tasks are found by duck type in throwaway packages written to tmp_path."""

from __future__ import annotations

import logging
import os
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alsek.exceptions import NoTasksFoundError, TaskNameCollisionError
from alsek.utils.scanning import collect_async_tasks, collect_tasks

FAKE_TASKS = """
class FakeTask:
    _alsek_task_kind = "sync"

    def __init__(self, name):
        self.name = name


class FakeAsyncTask:
    _alsek_task_kind = "async"

    def __init__(self, name):
        self.name = name
"""

Writer = Callable[[dict[str, str]], str]


@pytest.fixture
def write_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Writer]:
    """Write ``{relative path: source}`` under a uniquely named package; return its name.

    ``fake.py`` (the fake task classes) is always added. Imported modules are forgotten after.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(files: dict[str, str]) -> str:
        name = f"pkg_{uuid.uuid4().hex[:10]}"
        names.append(name)
        for relative, source in {"__init__.py": "", "fake.py": FAKE_TASKS, **files}.items():
            path = tmp_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).replace("PKG", name))
        return name

    yield write
    for module in [m for m in sys.modules if any(m.split(".")[0] == n for n in names)]:
        del sys.modules[module]


def _names(tasks: tuple[object, ...]) -> set[str]:
    return {task.name for task in tasks}  # type: ignore[attr-defined]


def test_collects_tasks_from_submodules(write_package: Writer) -> None:
    package = write_package(
        {
            "a.py": "from PKG.fake import FakeTask\nfirst = FakeTask('first')\n",
            "b.py": "from PKG.fake import FakeTask\nsecond = FakeTask('second')\n",
        }
    )
    assert _names(collect_tasks(package)) == {"first", "second"}


def test_collects_tasks_defined_in_the_package_init(write_package: Writer) -> None:
    package = write_package(
        {"__init__.py": "from PKG.fake import FakeTask\nroot = FakeTask('root')\n"}
    )
    assert _names(collect_tasks(package)) == {"root"}


def test_collects_tasks_in_subpackages_and_their_inits(write_package: Writer) -> None:
    package = write_package(
        {
            "sub/__init__.py": "from PKG.fake import FakeTask\nsub_init = FakeTask('sub_init')\n",
            "sub/deep.py": "from PKG.fake import FakeTask\ndeep = FakeTask('deep')\n",
        }
    )
    assert _names(collect_tasks(package)) == {"sub_init", "deep"}


def test_scans_a_plain_module_on_its_own(write_package: Writer) -> None:
    package = write_package(
        {
            "only.py": "from PKG.fake import FakeTask\nmine = FakeTask('mine')\n",
            "other.py": "from PKG.fake import FakeTask\ntheirs = FakeTask('theirs')\n",
        }
    )
    assert _names(collect_tasks(f"{package}.only")) == {"mine"}


def test_accepts_a_module_object(write_package: Writer) -> None:
    package = write_package({"a.py": "from PKG.fake import FakeTask\nt = FakeTask('t')\n"})
    module = __import__(f"{package}.a", fromlist=["t"])
    assert _names(collect_tasks(module)) == {"t"}


def test_sync_and_async_tasks_are_collected_separately(write_package: Writer) -> None:
    package = write_package(
        {
            "a.py": (
                "from PKG.fake import FakeTask, FakeAsyncTask\n"
                "s = FakeTask('s')\n"
                "a = FakeAsyncTask('a')\n"
            )
        }
    )
    assert _names(collect_tasks(package)) == {"s"}
    assert _names(collect_async_tasks(package)) == {"a"}


def test_task_classes_themselves_are_not_collected(write_package: Writer) -> None:
    package = write_package({"a.py": "from PKG.fake import FakeTask\n"})
    with pytest.raises(NoTasksFoundError):
        collect_tasks(package)


def test_the_same_task_reexported_counts_once(write_package: Writer) -> None:
    package = write_package(
        {
            "__init__.py": "from PKG.a import original as alias\n",
            "a.py": "from PKG.fake import FakeTask\noriginal = FakeTask('shared')\n",
        }
    )
    tasks = collect_tasks(package)
    assert len(tasks) == 1
    assert _names(tasks) == {"shared"}


def test_two_tasks_with_the_same_name_collide(write_package: Writer) -> None:
    package = write_package(
        {
            "a.py": "from PKG.fake import FakeTask\nx = FakeTask('dup')\n",
            "b.py": "from PKG.fake import FakeTask\ny = FakeTask('dup')\n",
        }
    )
    with pytest.raises(TaskNameCollisionError) as info:
        collect_tasks(package)
    message = str(info.value)
    assert "'dup'" in message
    assert f"'{package}.a'" in message
    assert f"'{package}.b'" in message


def test_async_tasks_with_the_same_name_collide(write_package: Writer) -> None:
    package = write_package(
        {
            "a.py": (
                "from PKG.fake import FakeAsyncTask\n"
                "x = FakeAsyncTask('d')\n"
                "y = FakeAsyncTask('d')\n"
            )
        }
    )
    with pytest.raises(TaskNameCollisionError, match="Multiple async tasks named 'd'"):
        collect_async_tasks(package)


def test_different_attribute_names_same_object_is_not_a_collision(write_package: Writer) -> None:
    package = write_package({"a.py": "from PKG.fake import FakeTask\nx = FakeTask('t')\ny = x\n"})
    assert len(collect_tasks(package)) == 1


def test_no_tasks_raises(write_package: Writer) -> None:
    package = write_package({"a.py": "VALUE = 1\n"})
    with pytest.raises(NoTasksFoundError, match=f"No tasks found in '{package}'"):
        collect_tasks(package)


def test_only_sync_tasks_means_no_async_tasks(write_package: Writer) -> None:
    package = write_package({"a.py": "from PKG.fake import FakeTask\nt = FakeTask('t')\n"})
    with pytest.raises(NoTasksFoundError, match="No async tasks found"):
        collect_async_tasks(package)


@pytest.mark.parametrize("bad", [3, None, b"pkg", Path("pkg")])
def test_wrong_argument_type_raises_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="Expected a module or a module name"):
        collect_tasks(bad)  # type: ignore[arg-type]


def test_missing_package_raises_module_not_found_unchanged() -> None:
    with pytest.raises(ModuleNotFoundError) as info:
        collect_tasks("no_such_package_for_alsek_tests")
    assert info.value.name == "no_such_package_for_alsek_tests"


def test_a_broken_submodule_raises_its_error(write_package: Writer) -> None:
    package = write_package({"broken.py": "import no_such_dependency_for_alsek\n"})
    with pytest.raises(ModuleNotFoundError) as info:
        collect_tasks(package)
    assert info.value.name == "no_such_dependency_for_alsek"


def test_a_broken_subpackage_is_not_silently_skipped(write_package: Writer) -> None:
    package = write_package(
        {
            "sub/__init__.py": "import no_such_dependency_for_alsek\n",
            "a.py": "from PKG.fake import FakeTask\nt = FakeTask('t')\n",
        }
    )
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_for_alsek"):
        collect_tasks(package)


def test_other_errors_in_modules_propagate(write_package: Writer) -> None:
    package = write_package({"bad.py": "1 / 0\n"})
    with pytest.raises(ZeroDivisionError):
        collect_tasks(package)


def test_working_directory_is_importable_and_added_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"cwd_pkg_{uuid.uuid4().hex[:10]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(FAKE_TASKS + "t = FakeTask('t')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    try:
        assert _names(collect_tasks(name)) == {"t"}
        collect_tasks(name)
        assert sys.path[0] == str(tmp_path)
        assert sys.path.count(str(tmp_path)) == 1
    finally:
        sys.modules.pop(name, None)


def test_scan_is_logged(write_package: Writer, caplog: pytest.LogCaptureFixture) -> None:
    package = write_package({"a.py": "from PKG.fake import FakeTask\nt = FakeTask('t')\n"})
    with caplog.at_level(logging.DEBUG, logger="alsek"):
        collect_tasks(package)
    assert f"Scanning '{package}' for tasks" in caplog.text
    assert "Found 1 task(s)" in caplog.text
