"""Each broker script carries only the library definitions its body uses (scripts/assemble.py).

A definition the assembly drops while the script still names it would be read as a nil global,
failing only when that line runs: so every script is checked here, statically (each library
name it uses is defined above the use) and by the servers (each loads).
"""

from __future__ import annotations

import re

import pytest
import redis

from alsek.core.broker.scripts import SCRIPT_NAMES, get_script, library_blocks
from alsek.core.broker.scripts.assemble import code_only, shake, split_blocks
from alsek.core.steps.ops import Script

FAKE_LIBRARY = """\
-- the clock, always kept
local NOW
do
  NOW = 5
end
local PREFIX = ARGV[1]
local UNUSED_TABLE = {1, 2,
  3}
local function qbase(q) return PREFIX .. q end
-- msg_key names qbase; nothing here names wake
local function msg_key(q, u)
  return qbase(q) .. ':' .. u
end
local BUCKETS = {
  10,
  20,
}
local function bucket(ms)
  if ms > BUCKETS[1] then
    return 'qbase'
  end
  return 0
end
local function wake(q) return msg_key(q, 'w') end
"""


def used_before_defined(text: str, library_names: set[str]) -> list[str]:
    """The library names ``text`` uses above (or without) a top-level definition of them."""
    code = code_only(text)
    defined_at: dict[str, int] = {}
    for match in re.finditer(r"^local (?:function )?(\w+(?:\s*,\s*\w+)*)", code, re.M):
        for name in re.split(r"\s*,\s*", match.group(1)):
            defined_at.setdefault(name, match.start(1))
    missing = []
    for match in re.finditer(r"[A-Za-z_]\w*", code):
        name = match.group(0)
        if name in library_names and defined_at.get(name, len(code)) > match.start():
            missing.append(name)
    return sorted(set(missing))


def _library_names() -> set[str]:
    return {name for block in library_blocks() for name in block.defines}


def test_a_script_keeps_what_its_body_uses_transitively_in_library_order() -> None:
    text = shake(split_blocks(FAKE_LIBRARY), "return wake('q')")
    kept = re.findall(r"^local (?:function )?(\w+)", text, re.M)
    assert kept == ["NOW", "PREFIX", "qbase", "msg_key", "wake"]
    assert "NOW = 5" in text  # the clock's block, named by no body, is kept
    assert text.endswith("\nreturn wake('q')")
    assert "-- msg_key names qbase" in text  # a definition keeps its comment


def test_names_in_comments_and_strings_pull_in_nothing() -> None:
    text = shake(split_blocks(FAKE_LIBRARY), "-- not wake\nreturn bucket(3) .. 'msg_key'")
    kept = re.findall(r"^local (?:function )?(\w+)", text, re.M)
    assert kept == ["NOW", "BUCKETS", "bucket"]
    assert "  20,\n}" in text  # a table over several lines is kept whole


def test_the_static_check_finds_a_dropped_definition() -> None:
    blocks = split_blocks(FAKE_LIBRARY)
    names = {name for block in blocks for name in block.defines}
    body = "return wake('q')"
    assert used_before_defined(shake(blocks, body), names) == []
    without_qbase = [block for block in blocks if "qbase" not in block.defines]
    assert used_before_defined(shake(without_qbase, body), names) == ["qbase"]
    assert used_before_defined(FAKE_LIBRARY.replace("local PREFIX", "PREFIX"), names) == ["PREFIX"]


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_library_name_a_script_uses_is_defined_above_the_use(name: str) -> None:
    script = get_script(name)
    names = _library_names()
    assert used_before_defined(script.text, names) == []
    assert used_before_defined(script.sharded.text, names) == []


def test_scripts_carry_less_than_the_whole_library() -> None:
    whole = len(library_blocks())
    carried = {name: get_script(name).text.count("\nlocal ") for name in SCRIPT_NAMES}
    assert max(carried.values()) < whole
    assert carried["renew"] < whole / 4


@pytest.mark.servers("redis", "valkey")
def test_every_script_and_its_sharded_variant_loads(redis_client: redis.Redis) -> None:
    scripts: list[Script] = []
    for name in SCRIPT_NAMES:
        scripts += [get_script(name), get_script(name).sharded]
    for script in scripts:
        assert redis_client.script_load(script.text) == script.sha, script.name
