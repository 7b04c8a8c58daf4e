"""Public handles have no public constructor: they come from ``open_pool`` and its methods.

As trio and trio-parallel do it: calling the class raises TypeError; the package makes
instances with ``Cls._create(...)``. (The names they present are ``_shared/_metadata.py``'s.)
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class NoPublicConstructor(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "get one from open_pool() and the pool's methods"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]
