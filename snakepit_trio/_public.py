"""What public objects share: no public constructor, and the module they present.

Public handles have no public constructor: they come from ``open_pool`` and its methods. As
trio and trio-parallel do it: calling the class raises TypeError; the package makes
instances with ``Cls._create(...)``.

Public classes and functions live in private modules but present themselves as members of
the package that exports them (``snakepit_trio.Pool``, not ``snakepit_trio._pool.Pool``), as
trio's ``fixup_module_metadata`` does, so reprs and tracebacks show the name users import.
"""

from __future__ import annotations

import types
from typing import Any, TypeVar

T = TypeVar("T")


class NoPublicConstructor(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{cls.__module__.split('.')[0]}.{cls.__qualname__} has no public constructor; "
            "get one from open_pool() and the pool's methods"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


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
