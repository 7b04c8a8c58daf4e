"""Write the API reference at build time (mkdocs-gen-files), one page per public namespace.

Every name comes from the lists the package itself keeps: ``snakepit_trio._EXPORTS`` (the
errors, those defined in ``_errors``, on a page of their own), ``snakepit_trio.worker.__all__``
and ``snakepit_trio.testing.__all__``. A name added to one of them appears here with no edit.
"""

from __future__ import annotations

import pathlib
import sys

import mkdocs_gen_files

# The package beside mkdocs.yml, whatever else the interpreter has installed.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import snakepit_trio
import snakepit_trio.contrib.ray
import snakepit_trio.testing
import snakepit_trio.worker

ERRORS_MODULE = "._errors"

PAGES: list[tuple[str, str, str, list[str]]] = [
    (
        "pool.md",
        "Pools and calls",
        "`import snakepit_trio as sp`: everything the host uses, re-exported at the top level.",
        [n for n, m in snakepit_trio._EXPORTS.items() if m != ERRORS_MODULE],
    ),
    (
        "errors.md",
        "Errors",
        "Every error derives from `SnakepitError`; the failure semantics guide says when "
        "each is raised and whether the call ran.",
        [n for n, m in snakepit_trio._EXPORTS.items() if m == ERRORS_MODULE],
    ),
    (
        "worker.md",
        "Worker (snakepit_trio.worker)",
        "What runs in each worker process: plain asyncio, never trio.",
        [f"worker.{n}" for n in snakepit_trio.worker.__all__],
    ),
    (
        "testing.md",
        "Testing (snakepit_trio.testing)",
        "The pool in memory, for your own tests.",
        [f"testing.{n}" for n in snakepit_trio.testing.__all__],
    ),
    (
        "ray.md",
        "Ray (snakepit_trio.contrib.ray)",
        "Workers placed on a Ray cluster: `open_pool(..., launcher=RayLauncher(...))` "
        "(the `ray` extra; the Scaling out guide says what holds).",
        [f"contrib.ray.{n}" for n in snakepit_trio.contrib.ray.__all__],
    ),
]

nav = mkdocs_gen_files.Nav()
for filename, title, intro, names in PAGES:
    nav[title] = filename
    with mkdocs_gen_files.open(f"reference/{filename}", "w") as page:
        page.write(f"# {title}\n\n{intro}\n\n")
        for name in names:
            page.write(f"::: snakepit_trio.{name}\n\n")

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as summary:
    summary.writelines(nav.build_literate_nav())
