"""Why a review operation was refused. The API maps each class to one status code."""

from __future__ import annotations


class ReviewError(Exception):
    """A review request that cannot be done as asked (bad input)."""


class NotFound(ReviewError):
    pass


class Conflict(ReviewError):
    """The object is not in a state that allows this (claimed by someone else, decided)."""


class NotAllowed(ReviewError):
    """The caller may not do this (four-eyes: approving one's own decision; no person)."""
