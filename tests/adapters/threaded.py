"""An adapter module that starts a thread when imported, as some client libraries do."""

from __future__ import annotations

import threading

from tests.adapters.forking import Lineage

_idle = threading.Event()
threading.Thread(target=_idle.wait, name="started-at-import", daemon=True).start()


class Threaded(Lineage):
    pass
