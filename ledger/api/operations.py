"""The ledger's operations as plain functions, shared by its HTTP views and by ZAP (``/zap`` dispatches to
exactly the same code): parse with the serializers, call one service or selector, answer the original's body."""

from __future__ import annotations

from rest_framework import status as http

from billing_project.core.api.inputs import validated
from billing_project.core.api.pagination import paginate
from billing_project.core.errors import ValidationError as AppValidationError
from billing_project.core.money import currency_normalize
from billing_project.core.times import rfc3339
from ledger import selectors, services
from ledger.api import serializers as s


def op_get_balance(organization, *, user: str, currency) -> dict:
    cur = currency_normalize(currency)
    wallet = selectors.balance_get(organization=organization, user=user, currency=cur)
    return {"user": user, "currency": cur, "balance": wallet.balance, "holds": wallet.holds,
            "available": wallet.available}


def op_get_balance_all(organization, *, user: str) -> dict:
    balances = selectors.balance_list(organization=organization, user=user)
    return {"user": user, "balances": [
        {"currency": b.currency, "balance": b.balance, "holds": b.holds, "available": b.available}
        for b in balances
    ]}


def op_get_usage(organization, *, user: str, currency, query_params) -> dict:
    cur = currency_normalize(currency, default=None) if currency else None
    qs = selectors.usage_list(organization=organization, user=user, currency=cur)
    items, has_more = paginate(qs, query_params)
    usage = [{"transactionId": t.public_id, "amount": t.amount, "currency": t.currency, "notes": t.notes,
              "metadata": t.metadata, "createdAt": rfc3339(t.created_at)} for t in items]
    return {"user": user, "count": len(usage), "usage": usage, "hasMore": has_more}


def op_record_usage(organization, data: dict, *, recorder=services.usage_record) -> tuple[int, dict]:
    """``recorder``: the service that records it (``/usage`` and ZAP use invoicing's
    ``usage_record_metered``, which also writes the usage meter event in the same transaction)."""
    v = validated(s.UsageIn, data)
    v["totalTokens"] = _total_tokens(v)
    if v["amount"] <= 0:  # the original: "≤ 0 means nothing to charge"
        return http.HTTP_200_OK, {"user": v["user"], "amount": 0, "status": "skipped"}
    metadata = {key: v[key] for key in ("model", "provider", "promptTokens", "completionTokens", "totalTokens",
                                        "requestId", "premium", "stream", "status", "clientIp")}
    txn = recorder(
        organization=organization, user=v["user"], amount=v["amount"], currency=v["currency"],
        notes=f"API usage: {v['model']} ({v['totalTokens']} tokens)", metadata=metadata,
        request_id=v["requestId"] or None,
    )
    return http.HTTP_201_CREATED, {"transactionId": txn.public_id, "user": txn.customer, "amount": txn.amount,
                                   "currency": txn.currency, "type": "withdraw"}


def _total_tokens(v: dict) -> int:
    """``tokens`` is an alias of ``totalTokens``; sent together they must agree."""
    total, alias = v["totalTokens"], v.pop("tokens")
    if total is not None and alias is not None and total != alias:
        raise AppValidationError(f"tokens ({alias}) must equal totalTokens ({total}) when both are sent",
                                 param="tokens")
    return total if total is not None else (alias or 0)


def op_deposit(organization, data: dict, *, idempotency_key: str | None = None) -> tuple[int, dict]:
    v = validated(s.DepositIn, data)
    txn = services.deposit_create(
        organization=organization, user=v["user"], amount=v["amount"], currency=v["currency"], notes=v["notes"],
        tags=v["tags"], expires_in=v["expiresIn"],
        idempotency_key=f"deposit:{idempotency_key}" if idempotency_key else None,
    )
    return http.HTTP_201_CREATED, txn_body(txn)


def txn_body(txn, **extra) -> dict:
    out = {"transactionId": txn.public_id, "user": txn.customer, "amount": txn.amount, "currency": txn.currency,
           "type": txn.type, "tags": txn.tags}
    if txn.expires_at:
        out["expiresAt"] = rfc3339(txn.expires_at)
    out.update(extra)
    return out
