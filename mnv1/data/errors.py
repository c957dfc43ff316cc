"""The one error class of the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset that cannot be used as configured; the message says which key and what to do.

    A ``ValueError`` so callers that validate configuration catch it with everything else.
    """
