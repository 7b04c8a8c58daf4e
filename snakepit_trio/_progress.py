"""Progress events that tools report with ``ToolContext.progress()``."""

from __future__ import annotations

from collections.abc import Callable

import attrs

__all__ = ["Progress"]


@attrs.frozen
class Progress:
    """One progress report from a running tool.

    Attributes:
        done: work done so far, in the tool's own unit.
        total: the total, when the tool knows it.
        message: a short human-readable note, or None.
    """

    done: float
    total: float | None = None
    message: str | None = None

    @property
    def fraction(self) -> float | None:
        """``done / total`` clamped to [0, 1], or None without a total."""
        if not self.total:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)


ProgressCallback = Callable[[Progress], object]


def progress_from_frame(frame: list[object]) -> Progress:
    _, _, done, total, message = frame[:5]
    return Progress(
        float(done),  # type: ignore[arg-type]
        None if total is None else float(total),  # type: ignore[arg-type]
        None if message is None else str(message),
    )
