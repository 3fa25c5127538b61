"""Failures a caller can act on, each with a message fit to show a user."""

from __future__ import annotations


class ServiceError(Exception):
    """Base: ``str(error)`` is the user-facing message."""


class NotFoundError(ServiceError):
    pass


class InvalidInputError(ServiceError):
    """The request is well-formed but its content is not acceptable (HTTP 422)."""


class PayloadTooLargeError(ServiceError):
    pass


class QuotaExceededError(ServiceError):
    pass


class ConflictError(ServiceError):
    """The request is valid but the item is not in a state that allows it (HTTP 409)."""
