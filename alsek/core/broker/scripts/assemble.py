"""Assemble a broker script from only the library definitions its body uses.

Redis runs a script's whole text on every call: each ``local function`` of the library makes a
closure and each top-level table is built again, whether the body uses them or not. A script
therefore carries the definitions its body names, and the ones those name, in library order.

The library is read as top-level blocks, one per statement starting at column 0 (its comment
lines before it included): ``local function NAME(`` … ``end`` and ``local NAME = …`` (possibly
over several lines) define NAME; every other block (the ``local NOW`` and ``do`` that read the
clock, ``redis.replicate_commands()``) is always kept. Names are found in the text with comments
and strings blanked out; a word that only looks like a use keeps a definition it did not need,
which costs a little, where a missed one would fail the script when that line runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Lua comments (long ones first) and strings, so that names are only read from code.
_COMMENT_OR_STRING = re.compile(
    r"--\[(?P<ceq>=*)\[.*?\](?P=ceq)\]"
    r"|--[^\n]*"
    r"|\[(?P<seq>=*)\[.*?\](?P=seq)\]"
    r"|'(?:\\.|[^'\\\n])*'"
    r'|"(?:\\.|[^"\\\n])*"',
    re.S,
)
_WORD = re.compile(r"[A-Za-z_]\w*")
_FUNCTION = re.compile(r"local\s+function\s+(\w+)")
_LOCALS = re.compile(r"local\s+(\w+(?:\s*,\s*\w+)*)\s*=")
#: Lines at column 0 that close or continue the statement above instead of starting one.
_CONTINUES = re.compile(r"(end|else|elseif|until|and|or)\b|[})\]]|\.\.")


@dataclass(frozen=True)
class Block:
    """One top-level statement of the library: its text, the names it defines and uses."""

    text: str
    defines: frozenset[str]
    uses: frozenset[str]


def code_only(source: str) -> str:
    """``source`` with comments and string contents blanked (line breaks kept, so lines match)."""

    def blank(match: re.Match[str]) -> str:
        text = match.group(0)
        return "''" + "\n" * text.count("\n") if text[0] in "'\"[" else "\n" * text.count("\n")

    return _COMMENT_OR_STRING.sub(blank, source)


def names_in(code: str) -> frozenset[str]:
    """Every word of ``code`` (comments and strings already blanked): the names it may use."""
    return frozenset(_WORD.findall(code))


def _defined_by(first_line: str) -> frozenset[str]:
    """The names a statement starting with ``first_line`` defines (none: always kept)."""
    function = _FUNCTION.match(first_line)
    if function:
        return frozenset({function.group(1)})
    assigned = _LOCALS.match(first_line)
    if assigned:
        return frozenset(name.strip() for name in assigned.group(1).split(","))
    return frozenset()


def split_blocks(library: str) -> list[Block]:
    """The top-level statements of ``library`` in order, each with the comments above it."""
    original = library.split("\n")
    cleaned = code_only(library).split("\n")
    groups: list[list[int]] = []  # line numbers of each statement
    leading: list[int] = []  # comment and blank lines waiting for the next statement
    for number, code in enumerate(cleaned):
        if not code.strip():
            leading.append(number)
            continue
        if not groups or not (code[0].isspace() or _CONTINUES.match(code)):
            groups.append([])
        groups[-1].extend([*leading, number])
        leading = []
    blocks = []
    for lines in groups:
        first_code = next(cleaned[n] for n in lines if cleaned[n].strip())
        blocks.append(
            Block(
                text="\n".join(original[n] for n in lines),
                defines=_defined_by(first_code),
                uses=names_in("\n".join(cleaned[n] for n in lines)),
            )
        )
    return blocks


def shake(blocks: list[Block], body: str) -> str:
    """The library blocks ``body`` needs (transitively) in library order, then ``body``."""
    definers: dict[str, list[int]] = {}
    for index, block in enumerate(blocks):
        for name in block.defines:
            definers.setdefault(name, []).append(index)
    wanted = {index for index, block in enumerate(blocks) if not block.defines}
    pending = [names_in(code_only(body))] + [blocks[index].uses for index in wanted]
    seen: set[str] = set()
    while pending:
        for name in pending.pop() - seen:
            seen.add(name)
            for index in definers.get(name, ()):
                if index not in wanted:
                    wanted.add(index)
                    pending.append(blocks[index].uses)
    kept = [block.text for index, block in enumerate(blocks) if index in wanted]
    return "\n".join([*kept, body])
