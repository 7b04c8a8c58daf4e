"""Errors of a worker's channel, translated from whatever the carrier raised."""

from __future__ import annotations


class TransportError(Exception):
    """The worker's channel failed: it could not be opened, or it broke.

    Raised with the carrier's own exception (grpclib, OSError, trio) as ``__cause__``.
    """
