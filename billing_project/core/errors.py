"""Application errors with stable codes. The API exception handler renders them as
``{"error": {"type": "api-error", "code", "message", "param"}}`` with ``status``."""

from __future__ import annotations


class ApplicationError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param


class ValidationError(ApplicationError):
    status = 400
    code = "invalid_request"


class NotFound(ApplicationError):
    status = 404
    code = "resource_missing"


class Conflict(ApplicationError):
    status = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"


class InsufficientFunds(ApplicationError):
    status = 402
    code = "insufficient_funds"
