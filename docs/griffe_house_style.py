"""A Griffe extension: read the package's two docstring conventions as Google style.

The package's docstrings (checked by tests/test_exports.py) allow what the Google parser
does not: one ``Args:`` entry for several parameters (``tool, args, timeout: as for
``execute``.``, the names possibly wrapped onto a second line), and ``Raises:`` entries in
prose (``Nothing; it reads counters.``, ``The errors of ``stream``.``). Before parsing, the
first becomes one entry per parameter, and the prose moves to a paragraph after the section.
Nothing else is changed, so any other formatting problem still warns (and fails --strict).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SECTION = re.compile(r"^(Args|Raises):\s*$")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*:(\s|$)")


def _entries(body: list[str]) -> tuple[int, list[list[str]]]:
    """The section's indentation and its entries (first line, then continuation lines)."""
    indent = min(len(x) - len(x.lstrip()) for x in body if x.strip())
    entries: list[list[str]] = []
    for line in body:
        if line.strip() and len(line) - len(line.lstrip()) == indent:
            entries.append([line.strip()])
        elif entries:
            entries[-1].append(line.strip())
    return indent, entries


def _args(indent: int, entries: list[list[str]]) -> list[str]:
    out = []
    for entry in entries:
        text = " ".join(x for x in entry if x)
        names, colon, description = text.partition(":")
        if colon and "," in names and "(" not in names:
            out += [f"{' ' * indent}{n.strip()}:{description}" for n in names.split(",")]
        else:
            pad = " " * (indent + 4)
            out += [" " * indent + entry[0], *(pad + x if x else "" for x in entry[1:])]
    return out


def _raises(indent: int, entries: list[list[str]]) -> tuple[list[str], list[str]]:
    """(the entries that name exceptions, the prose), a prose line joining its neighbour."""
    named: list[list[str]] = []
    prose: list[str] = []
    for entry in entries:
        if _EXCEPTION.match(entry[0]):
            named.append(entry)
        elif named and not prose:
            named[-1] += entry  # a continuation line written at the entry's indentation
        else:
            prose += entry
    lines = [" " * indent + " ".join(x for x in entry if x) for entry in named]
    return lines, [x for x in prose if x]


def rewrite(text: str) -> str:
    """The docstring ``text`` with the two conventions made Google style."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _SECTION.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        j = i + 1
        while j < len(lines) and (not lines[j] or lines[j][0].isspace()):
            j += 1
        body = lines[i + 1 : j]
        if not any(x.strip() for x in body):
            out += lines[i:j]
            i = j
            continue
        indent, entries = _entries(body)
        if match.group(1) == "Args":
            out += [lines[i], *_args(indent, entries)]
        else:
            named, prose = _raises(indent, entries)
            if named:
                out += [lines[i], *named]
            if prose:
                out += ["", "**Raises:** " + " ".join(prose)]
        out.append("")
        i = j
    return "\n".join(out).rstrip() + "\n"


class HouseStyle(griffe.Extension):
    """Rewrites each docstring once, when its object is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
