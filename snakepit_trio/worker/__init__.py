"""The worker side of snakepit_trio: write an Adapter, mark its tools, and the host serves it.

This package never imports trio: workers are plain asyncio (uvloop when installed).
"""

from .._shared._metadata import fixup_module_metadata
from ._adapter import Adapter as Adapter
from ._adapter import tool as tool
from ._context import ToolContext as ToolContext

__all__ = ["Adapter", "ToolContext", "tool"]

for _name in __all__:  # reprs and tracebacks read snakepit_trio.worker.Adapter
    fixup_module_metadata(globals()[_name], __name__)
del _name
