"""Function tools' entries, ``"package.module:function"``, read the same way on both sides.

The host checks each entry of ``open_pool(tools=[...])`` when the pool's configuration is
built; a worker parses the same entries from its ``--tool`` flags before importing them.
Workers find a function by importing its module and reading one top-level name, so an entry
names a module that is not ``__main__`` and a name that is an identifier. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

FORM = "'package.module:function'"


def split_entry(entry: str) -> tuple[str, str]:
    """``(module, name)`` of a tools entry.

    Args:
        entry: ``"package.module:function"``.

    Returns:
        The module to import and the top-level name to read in it.

    Raises:
        ValueError: the entry has another form, or names something workers cannot import
            (a lambda, a function defined inside another, one in ``__main__``); the message
            says what to do instead. One line.
    """
    module, sep, name = entry.partition(":")
    if "<lambda>" in name:
        raise ValueError(
            f"tools entry {entry!r} is a lambda: workers import a tool by its name, and a "
            "lambda has none; define it with def at the top level of a module and name it "
            f"{FORM}"
        )
    if ".<locals>." in name:
        outer, _, inner = name.partition(".<locals>.")
        raise ValueError(
            f"tools entry {entry!r} is defined inside {outer}(): workers can import only a "
            f"module's top-level names; move {inner.rpartition('.')[2]} to the top level of "
            f"{module or 'a module'}"
        )
    if module == "__main__":
        raise ValueError(
            f"tools entry {entry!r} is a function of __main__, the script you ran: workers "
            "do not run your script, so they cannot import it; move it into a module of its "
            f"own (e.g. tasks.py beside the script) and pass 'tasks:{name or 'function'}'"
        )
    parts = module.split(".")
    if not (sep and name.isidentifier() and all(p.isidentifier() for p in parts)):
        also = ""
        if sep and "." in name and all(p.isidentifier() for p in name.split(".")):
            also = " (a top-level function of the module: a method is served by an Adapter)"
        raise ValueError(f"tools entry {entry!r} must look like {FORM}{also}")
    return module, name


def label(adapter: str | None, tools: Sequence[str]) -> str:
    """What a pool serves, in one line: its adapter, its tools entries, or both."""
    entries = ", ".join(tools)
    if adapter and entries:
        return f"{adapter} + {entries}"
    return adapter or entries
