"""``snakepit-trio new NAME``: write an adapter package whose tests pass as generated.

The files come from ``templates/`` (package data, filled in with ``string.Template``):
a ``pyproject.toml``, a README snippet, the adapter (a plain, a streaming and a ``ping``
tool), a test with the in-memory fake (``snakepit_trio.testing.open_fake_pool``) and one with
a real pool. Nothing is overwritten: an existing target directory is refused.
"""

from __future__ import annotations

import argparse
import keyword
import re
import string
import sys
from importlib import resources
from pathlib import Path
from typing import Any

# template -> where it goes, relative to the project directory ("{p}": the package)
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "{p}/__init__.py",
    "adapter.py.tmpl": "{p}/adapter.py",
    "test_fake.py.tmpl": "tests/test_fake.py",
    "test_pool.py.tmpl": "tests/test_pool.py",
}


def add_parser(commands: Any) -> None:
    new = commands.add_parser(
        "new",
        help="write an adapter package with passing tests",
        description=(
            "Write NAME/ (a Python package NAME with an adapter, a test with the in-memory "
            "fake pool and one with a real pool). NAME may use letters, digits, _ and -."
        ),
    )
    new.add_argument("name", help="the project and package name (- becomes _ in the package)")
    new.add_argument("--dir", default=".", help="where to make the project (default: here)")


def package_name(name: str) -> str:
    """The importable package for NAME; ValueError when there is none."""
    package = name.replace("-", "_").lower()
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", package) or keyword.iskeyword(package):
        raise ValueError(f"{name!r} does not make a Python package name (try my_adapter)")
    return package


def class_name(package: str) -> str:
    return "".join(part.capitalize() for part in package.split("_") if part) or "Adapter"


def generate(name: str, parent: Path) -> Path:
    """Write the project into ``parent / name``; returns that directory.

    Raises:
        ValueError: NAME is not a usable package name.
        FileExistsError: the directory exists.
    """
    package = package_name(name)
    classname = class_name(package)
    values = {
        "package": package,
        "classname": classname,
        "adapter": f"{package}.adapter:{classname}",
    }
    root = parent / name
    root.mkdir(parents=True)
    templates = resources.files(__package__).joinpath("templates")
    for template, target in _FILES.items():
        text = string.Template(templates.joinpath(template).read_text()).substitute(values)
        path = root / target.format(p=package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run(args: argparse.Namespace) -> int:
    try:
        root = generate(args.name, Path(args.dir))
    except (ValueError, FileExistsError) as exc:
        print(f"snakepit-trio new: {exc}", file=sys.stderr)
        return 2
    package = package_name(args.name)
    print(f"wrote {root}/ (package {package}, adapter {package}.adapter:{class_name(package)})")
    print(f"next: cd {root} && pip install -e .[test] && pytest")
    return 0
