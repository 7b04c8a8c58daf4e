"""An adapter module that opens a file when imported: forks would share its descriptor."""

from __future__ import annotations

import os

from tests.adapters.forking import Lineage

_sink = open(os.devnull, "w")  # noqa: SIM115  (held for the module's life, on purpose)


class OpensFile(Lineage):
    pass
