"""Public names read as the package users import them from (as trio's fixup_module_metadata).

Shared by the host's door (``snakepit_trio/__init__.py``) and the worker's
(``snakepit_trio/worker/__init__.py``), so it imports neither trio nor asyncio.
"""

from __future__ import annotations

import types


def fixup_module_metadata(obj: object, module_name: str) -> None:
    """Present ``obj`` as a member of ``module_name`` if it is defined in a private submodule.

    Only objects whose ``__module__`` is ``module_name._something`` change, so calling this
    twice, or on a name defined elsewhere, does nothing. A class's methods (including
    property getters, class and static methods) are fixed with it.
    """
    module = getattr(obj, "__module__", None)
    if not (isinstance(module, str) and module.startswith(module_name + "._")):
        return
    obj.__module__ = module_name
    if isinstance(obj, type):
        for attr in vars(obj).values():
            if isinstance(attr, classmethod | staticmethod):
                fixup_module_metadata(attr.__func__, module_name)
            elif isinstance(attr, property):
                fixup_module_metadata(attr.fget, module_name)
            elif isinstance(attr, types.FunctionType):
                fixup_module_metadata(attr, module_name)
