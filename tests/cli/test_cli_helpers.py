"""cli.helpers.package2path."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import alsek.utils
import alsek.utils.string
from alsek.cli.helpers import package2path


def test_package_resolves_to_its_directory() -> None:
    assert package2path("alsek.utils") == Path(alsek.utils.__file__).parent


def test_module_resolves_to_its_file() -> None:
    assert package2path("alsek.utils.string") == Path(alsek.utils.string.__file__)


def test_package_in_a_new_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"p2p_{uuid.uuid4().hex[:10]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert package2path(name) == tmp_path / name


@pytest.mark.parametrize("name", ["no_such_package_for_alsek", "no_such_parent_for_alsek.child"])
def test_missing_package_raises_module_not_found(name: str) -> None:
    with pytest.raises(ModuleNotFoundError, match=rf"^Package '{name}' not found\.$"):
        package2path(name)


def test_builtin_module_without_a_file_raises_module_not_found() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"^Package 'sys' not found\.$"):
        package2path("sys")
