"""The worker side of snakepit_trio: write an Adapter, mark its tools, and the host serves it.

(Module-level functions need none of this: ``open_pool(tools=["pkg.mod:fn"])`` serves them.)

This package never imports trio: workers are plain asyncio (uvloop when installed).

Whatever a tool raises fails that call only: the caller gets a ``RemoteError`` naming the
exception's type, and the worker serves on. That holds for ``SystemExit`` and
``KeyboardInterrupt`` too (``sys.exit()`` in a tool does not stop the worker), in sync and
async tools and in generators of both kinds. A worker exits only when the host stops it or
goes away; a tool that must end its process for good calls ``os._exit()``, which the host
reports as ``WorkerCrashed``.

``placement()`` says where the pool placed this worker (``open_pool(devices=...,
threads_per_worker=...)``): its device and thread budget, readable from ``__init__`` on.

Telemetry: ``ctx.emit`` / ``ctx.span`` in tools, ``emit`` / ``span`` outside calls; the host's
handlers get them as ``adapter.<name>`` events.

``register_type`` (the same function as ``snakepit_trio.register_type``) lets a class of your
own travel as arguments and results: call it at import of the adapter's module, and in the
host.
"""

from .._shared._metadata import fixup_module_metadata
from .._shared._user_types import register_type as register_type
from ._adapter import Adapter as Adapter
from ._adapter import tool as tool
from ._context import ToolContext as ToolContext
from ._events import emit as emit
from ._events import span as span
from ._placement import Placement as Placement
from ._placement import placement as placement

__all__ = [
    "Adapter",
    "Placement",
    "ToolContext",
    "emit",
    "placement",
    "register_type",
    "span",
    "tool",
]

for _name in __all__:  # reprs and tracebacks read snakepit_trio.worker.Adapter
    if _name != "register_type":  # snakepit_trio's, whichever door it was imported from
        fixup_module_metadata(globals()[_name], __name__)
fixup_module_metadata(register_type, "snakepit_trio")
del _name
