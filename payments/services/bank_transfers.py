"""Bank transfers (spec payments.md §7): instructions, reconciliation by reference, unmatched transfers.

Invariants
- A reference is exactly 8 characters (8 lowercase hex digits, as the original) and unique per organization
  (unique constraint ``payments_bti_reference_uniq``; a collision is retried with a new reference), so a
  reference names at most one instruction. It is standing: every transfer quoting it credits the
  instruction's customer, and they accumulate.
- Money: a credited transfer is one ``InboundBankTransfer`` row plus one ``bank_transfer`` customer-balance
  transaction (Dr house ``bank`` / Cr ``customer_balance``, through
  ``ledger.services.customer_balance.customer_balance_post``), in one database transaction.
- Idempotency: duplicates are stopped only by an optional ``transferId`` (unique per organization:
  ``payments_ibt_transfer_uniq``) — a replay answers the first result, the same transfer id with another
  reference, amount or currency is a 409 — or by the API's ``Idempotency-Key``; never by the reference.
- Lock order: the pending unmatched transfer with that transfer id (row lock) → the inbound transfer's
  unique index entry (the insert) → the customer-balance row (``transaction_post``). Accounts and the
  customer row are resolved before any of these is taken.
- Side effects: ``bank_transfer_instruction.created``, ``customer_balance.credited`` (with the ledger's
  ``customer_balance.adjusted``), ``bank_transfer.unmatched`` — each in the transaction of its change.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing_project.core import services as core_services
from billing_project.core.errors import Conflict, NotFound, ValidationError
from billing_project.core.models import Customer, Organization
from billing_project.core.money import currency_normalize
from billing_project.core.times import rfc3339
from ledger.models import Account
from ledger.services import customer_balance as customer_balance_services
from payments.models import BankTransferInstruction, InboundBankTransfer, UnmatchedBankTransfer
from webhooks import services as webhook_services

EVENT_INSTRUCTION_CREATED = "bank_transfer_instruction.created"
EVENT_INSTRUCTION_EXPIRED = "bank_transfer_instruction.expired"
EVENT_BALANCE_CREDITED = "customer_balance.credited"
EVENT_UNMATCHED = "bank_transfer.unmatched"

NO_ACTIVE_INSTRUCTION = "no active instruction found for reference"
_REFERENCE_ATTEMPTS = 8
_TYPE_RULES = {  # the one type-specific field each type needs (the spec's generic checks come first)
    BankTransferInstruction.TYPE_ACH: ("routingNumber", "routing_number"),
    BankTransferInstruction.TYPE_SEPA: ("iban", "iban"),
}


# --- rendering -------------------------------------------------------------------------------------------

def bank_transfer_instruction_data(instruction: BankTransferInstruction) -> dict[str, Any]:
    """The instruction's JSON (spec §7): the optional fields only when set; the account number is masked."""
    data: dict[str, Any] = {
        "id": instruction.public_id,
        "customerId": instruction.customer.customer_id,
        "currency": instruction.currency,
        "type": instruction.type,
        "reference": instruction.reference,
        "bankName": instruction.bank_name,
        "accountNumber": instruction.account_number,
        "status": instruction.status,
        "createdAt": rfc3339(instruction.created_at),
        "updatedAt": rfc3339(instruction.updated_at),
    }
    for key, value in (("accountHolder", instruction.account_holder), ("routingNumber", instruction.routing_number),
                       ("iban", instruction.iban), ("bic", instruction.bic), ("metadata", instruction.metadata)):
        if value:
            data[key] = value
    return data


def bank_transfer_reconcile_data(inbound: InboundBankTransfer) -> dict[str, Any]:
    """The reconciliation answer (spec §7.4): what was matched and the balance transaction it made."""
    cbt = inbound.customer_balance_transaction
    data: dict[str, Any] = {
        "matched": True,
        "reference": inbound.reference,
        "customerId": inbound.customer.customer_id,
        "amount": inbound.amount,
        "currency": inbound.currency,
        "transferType": inbound.instruction.type if inbound.instruction_id else "",
        "transaction": {"id": cbt.public_id, "amount": cbt.amount, "endingBalance": cbt.ending_balance,
                        "type": cbt.type, "created": rfc3339(cbt.created_at)},
    }
    if inbound.transfer_id:
        data["transferId"] = inbound.transfer_id
    return data


def unmatched_bank_transfer_data(unmatched: UnmatchedBankTransfer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": unmatched.public_id,
        "amount": unmatched.amount,
        "currency": unmatched.currency,
        "status": unmatched.status,
        "created": rfc3339(unmatched.created_at),
    }
    inbound = unmatched.inbound_transfer
    for key, value in (("reference", unmatched.reference), ("transferId", unmatched.transfer_id),
                       ("senderName", unmatched.sender_name), ("description", unmatched.description),
                       ("metadata", unmatched.metadata),
                       ("matchedAt", rfc3339(unmatched.matched_at) if unmatched.matched_at else ""),
                       ("customerId", inbound.customer.customer_id if inbound else ""),
                       ("balanceTransactionId", inbound.customer_balance_transaction.public_id if inbound else "")):
        if value:
            data[key] = value
    return data


# --- instructions --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstructionInput:
    customer_id: str = ""
    type: str = ""
    bank_name: str = ""
    account_number: str = ""
    currency: str = ""
    account_holder: str = ""
    routing_number: str = ""
    iban: str = ""
    bic: str = ""
    metadata: dict[str, Any] | None = None


def _instruction_validate(data: InstructionInput) -> str:
    """The spec's checks in its order, then the type rules (ACH → routingNumber, SEPA → iban), then the
    currency; returns the normalised currency."""
    if not data.customer_id.strip():
        raise ValidationError("customerId is required", param="customerId", code="parameter_missing")
    if not data.type:
        raise ValidationError("type is required (ach, wire, sepa)", param="type", code="parameter_missing")
    if data.type not in BankTransferInstruction.TYPES:
        raise ValidationError("type must be one of: ach, wire, sepa", param="type")
    if not data.bank_name.strip():
        raise ValidationError("bankName is required", param="bankName", code="parameter_missing")
    if not data.account_number.strip():
        raise ValidationError("accountNumber is required", param="accountNumber", code="parameter_missing")
    rule = _TYPE_RULES.get(data.type)
    if rule is not None and not getattr(data, rule[1]).strip():
        raise ValidationError(f"{rule[0]} is required for {data.type} instructions", param=rule[0],
                              code="parameter_missing")
    return currency_normalize(data.currency)


def account_number_mask(number: str) -> str:
    """``****`` + the last 4 characters when longer than 4; otherwise as given (the original's rule)."""
    return f"****{number[-4:]}" if len(number) > 4 else number


def _reference_new() -> str:
    return secrets.token_hex(BankTransferInstruction.REFERENCE_LENGTH // 2)


def _instruction_insert(*, organization: Organization, customer: Customer, fields: dict[str, Any]
                        ) -> BankTransferInstruction:
    """Insert with a fresh reference; a collision with another instruction's reference retries (savepoint)."""
    for _ in range(_REFERENCE_ATTEMPTS):
        try:
            with transaction.atomic():
                return BankTransferInstruction.objects.create(
                    organization=organization, customer=customer, reference=_reference_new(), **fields)
        except IntegrityError as exc:
            if "payments_bti_reference_uniq" not in str(exc):
                raise
    raise Conflict("could not allocate a unique reference; retry the request", code="reference_unavailable")


def bank_transfer_instruction_create(*, organization: Organization, data: InstructionInput,
                                     actor: str = "") -> BankTransferInstruction:
    """A new instruction with a new reference (several per customer are fine). Validation: the spec's order,
    then type rules. Only the masked account number is stored. Idempotency: none of its own (each call is a
    new instruction; the API's ``Idempotency-Key`` covers retries). Side effect:
    ``bank_transfer_instruction.created``."""
    currency = _instruction_validate(data)
    customer = core_services.customer_ensure(organization=organization, customer_id=data.customer_id.strip())
    fields = {
        "currency": currency, "type": data.type, "bank_name": data.bank_name.strip(),
        "account_holder": data.account_holder.strip(),
        "account_number": account_number_mask(data.account_number.strip()),
        "routing_number": data.routing_number.strip(), "iban": data.iban.strip(), "bic": data.bic.strip(),
        "metadata": data.metadata or {},
    }
    with transaction.atomic():
        instruction = _instruction_insert(organization=organization, customer=customer, fields=fields)
        webhook_services.event_publish(
            organization=organization, type=EVENT_INSTRUCTION_CREATED, object_type="bank_transfer_instruction",
            object_id=instruction.public_id, customer_id=customer.customer_id,
            data=bank_transfer_instruction_data(instruction))
    return instruction


def bank_transfer_instruction_expire(*, organization: Organization, instruction_id: str, actor: str,
                                     reason: str = "") -> BankTransferInstruction:
    """active → expired: its reference stops matching (transfers quoting it answer 404). Guarded by the row
    lock; an expired one is a 409. Audited; event ``bank_transfer_instruction.expired``."""
    with transaction.atomic():
        instruction = (BankTransferInstruction.objects.select_for_update().select_related("customer")
                       .filter(organization=organization, public_id=instruction_id).first())
        if instruction is None:
            raise NotFound("bank transfer instruction not found", param="id")
        if instruction.status != BankTransferInstruction.STATUS_ACTIVE:
            raise Conflict(f"bank transfer instruction is already {instruction.status}",
                           code="instruction_not_active")
        instruction.status = BankTransferInstruction.STATUS_EXPIRED
        instruction.save(update_fields=["status", "updated_at"])
        core_services.audit_record(organization=organization, actor=actor, action="bank_transfer_instruction.expire",
                                   object_type="bank_transfer_instruction", object_id=instruction.public_id,
                                   reason=reason, data={"reference": instruction.reference})
        webhook_services.event_publish(
            organization=organization, type=EVENT_INSTRUCTION_EXPIRED, object_type="bank_transfer_instruction",
            object_id=instruction.public_id, customer_id=instruction.customer.customer_id,
            data=bank_transfer_instruction_data(instruction))
    return instruction


# --- crediting a transfer (reconciliation and an operator's match) ---------------------------------------

def _amount_validate(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("invalid request body: amount must be an integer", param="amount",
                              code="invalid_request_body")
    if amount <= 0:
        raise ValidationError("amount must be positive", param="amount")
    return amount


def _inbound_with_relations():
    return InboundBankTransfer.objects.select_related("customer", "instruction", "customer_balance_transaction")


def _replay(*, organization: Organization, transfer_id: str, reference: str | None, amount: int,
            currency: str) -> InboundBankTransfer | None:
    """The transfer already credited under ``transfer_id``, if any; a different transfer under that id is a
    409 (``reference`` None: not compared, an operator's match)."""
    inbound = _inbound_with_relations().filter(organization=organization, transfer_id=transfer_id).first()
    if inbound is None:
        return None
    if (inbound.amount, inbound.currency) != (amount, currency) or (
            reference is not None and inbound.reference != reference):
        raise Conflict(f"transferId {transfer_id} was already credited with a different reference, amount or "
                       f"currency ({inbound.public_id})", code="transfer_id_conflict", param="transferId")
    return inbound


@dataclass(frozen=True)
class _Credit:
    organization: Organization
    customer: Customer
    instruction: BankTransferInstruction | None
    reference: str
    amount: int
    currency: str
    transfer_id: str | None
    description: str
    actor: str
    account: Account  # the customer's customer_balance, resolved before any lock
    counter: Account  # house bank


def _credit(credit: _Credit, *, unmatched: UnmatchedBankTransfer | None = None) -> InboundBankTransfer | None:
    """Insert the inbound transfer and credit the customer balance, inside the caller's transaction.

    Returns None when another transaction already credited ``transfer_id`` (the insert lost the race on
    the unique index; nothing else was written)."""
    customer_id = credit.customer.customer_id
    try:
        with transaction.atomic():
            inbound = InboundBankTransfer.objects.create(
                organization=credit.organization, instruction=credit.instruction, customer=credit.customer,
                reference=credit.reference, amount=credit.amount, currency=credit.currency,
                transfer_id=credit.transfer_id, actor=credit.actor)
    except IntegrityError as exc:
        if "payments_ibt_transfer_uniq" not in str(exc):
            raise
        return None
    cbt = customer_balance_services.customer_balance_post(
        organization=credit.organization, customer=customer_id, currency=credit.currency, amount=credit.amount,
        type=customer_balance_services.TYPE_BANK_TRANSFER, account=credit.account, counter=credit.counter,
        description=credit.description, source_ref=inbound.public_id,
        metadata={k: v for k, v in (("reference", credit.reference), ("transferId", credit.transfer_id or ""),
                                    ("instructionId", credit.instruction.public_id if credit.instruction else ""))
                  if v},
        actor=credit.actor)
    inbound.customer_balance_transaction = cbt
    inbound.save(update_fields=["customer_balance_transaction"])
    if unmatched is not None:
        _unmatched_mark(unmatched, inbound=inbound, actor=credit.actor)
    webhook_services.event_publish(
        organization=credit.organization, type=EVENT_BALANCE_CREDITED, object_type="customer_balance_transaction",
        object_id=cbt.public_id, customer_id=customer_id,
        data=bank_transfer_reconcile_data(inbound) | {"inboundTransferId": inbound.public_id,
                                                      "balance": cbt.ending_balance})
    return inbound


def _unmatched_mark(unmatched: UnmatchedBankTransfer, *, inbound: InboundBankTransfer, actor: str) -> None:
    unmatched.status = UnmatchedBankTransfer.STATUS_MATCHED
    unmatched.inbound_transfer = inbound
    unmatched.matched_at = timezone.now()
    unmatched.matched_by = actor
    unmatched.save(update_fields=["status", "inbound_transfer", "matched_at", "matched_by"])


def _pending_unmatched_lock(*, organization: Organization, transfer_id: str | None, amount: int,
                            currency: str) -> UnmatchedBankTransfer | None:
    """The pending unmatched record of this very transfer (same id, amount and currency), row-locked: the
    reconciliation resolves it, so no operator credits the transfer a second time."""
    if not transfer_id:
        return None
    return (UnmatchedBankTransfer.objects.select_for_update()
            .filter(organization=organization, transfer_id=transfer_id, status=UnmatchedBankTransfer.STATUS_PENDING,
                    amount=amount, currency=currency).first())


def bank_transfer_reconcile(*, organization: Organization, reference: str, amount: object, currency: str = "usd",
                            transfer_id: str = "", actor: str = "") -> InboundBankTransfer:
    """Credit an inbound transfer to the customer of the active instruction with ``reference`` (spec §7.4).

    Errors in order: ``reference is required``, ``amount must be positive``, the currency, then 404
    ``no active instruction found for reference`` (unknown, expired or another organization's), nothing
    credited. Idempotency: a ``transfer_id`` already credited returns that first result (409 when it was a
    different transfer); concurrent calls with one ``transfer_id`` credit once (unique index). Locking and
    side effects: see the module docstring."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError("reference is required", param="reference", code="parameter_missing")
    amount = _amount_validate(amount)
    currency = currency_normalize(currency)
    transfer_id = (transfer_id or "").strip() or None
    if transfer_id and (done := _replay(organization=organization, transfer_id=transfer_id, reference=reference,
                                        amount=amount, currency=currency)):
        return done
    instruction = (BankTransferInstruction.objects.select_related("customer")
                   .filter(organization=organization, reference=reference,
                           status=BankTransferInstruction.STATUS_ACTIVE).first())
    if instruction is None:
        raise NotFound(NO_ACTIVE_INSTRUCTION, param="reference")
    account, counter = customer_balance_services.bank_transfer_accounts(
        organization=organization, customer=instruction.customer.customer_id, currency=currency)
    credit = _Credit(organization=organization, customer=instruction.customer, instruction=instruction,
                     reference=reference, amount=amount, currency=currency, transfer_id=transfer_id,
                     description=f"Bank transfer received (ref: {reference}, type: {instruction.type})", actor=actor,
                     account=account, counter=counter)
    with transaction.atomic():
        unmatched = _pending_unmatched_lock(organization=organization, transfer_id=transfer_id, amount=amount,
                                            currency=currency)
        inbound = _credit(credit, unmatched=unmatched)
    if inbound is None:  # a concurrent call credited this transfer id first: answer its result
        inbound = _replay(organization=organization, transfer_id=transfer_id, reference=reference, amount=amount,
                          currency=currency)
        if inbound is None:  # the unique index said it exists: a vanished row is a bug, never a second credit
            raise Conflict(f"transferId {transfer_id} is being credited; retry", code="transfer_in_flight")
    return inbound


# --- unmatched transfers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnmatchedInput:
    amount: object = 0
    currency: str = ""
    reference: str = ""
    transfer_id: str = ""
    sender_name: str = ""
    description: str = ""
    metadata: dict[str, Any] | None = None


def bank_transfer_unmatched_record(*, organization: Organization, data: UnmatchedInput,
                                   actor: str = "") -> UnmatchedBankTransfer:
    """Record a transfer nobody matched; it waits for an operator (admin "match to customer").

    Idempotency: a ``transferId`` already recorded returns that record (409 if the amount or currency
    differ); one already credited is a 409 ``transfer already credited``. Event ``bank_transfer.unmatched``."""
    amount = _amount_validate(data.amount)
    currency = currency_normalize(data.currency)
    transfer_id = data.transfer_id.strip() or None
    if transfer_id and (done := _unmatched_replay(organization=organization, transfer_id=transfer_id,
                                                  amount=amount, currency=currency)):
        return done
    try:
        with transaction.atomic():
            unmatched = UnmatchedBankTransfer.objects.create(
                organization=organization, reference=data.reference.strip(), amount=amount, currency=currency,
                transfer_id=transfer_id, sender_name=data.sender_name.strip(), description=data.description,
                metadata=data.metadata or {})
            webhook_services.event_publish(
                organization=organization, type=EVENT_UNMATCHED, object_type="unmatched_bank_transfer",
                object_id=unmatched.public_id, data=unmatched_bank_transfer_data(unmatched))
    except IntegrityError as exc:
        if "payments_ubt_transfer_uniq" not in str(exc):
            raise
        unmatched = _unmatched_replay(organization=organization, transfer_id=transfer_id, amount=amount,
                                      currency=currency)
    return unmatched


def _unmatched_replay(*, organization: Organization, transfer_id: str, amount: int,
                      currency: str) -> UnmatchedBankTransfer | None:
    """The record of ``transfer_id`` if there is one (409 if it differs); a transfer id already credited by
    reconciliation (and never recorded as unmatched) is a 409."""
    found = (UnmatchedBankTransfer.objects.select_related("inbound_transfer__customer",
                                                          "inbound_transfer__customer_balance_transaction")
             .filter(organization=organization, transfer_id=transfer_id).first())
    if found is not None:
        if (found.amount, found.currency) != (amount, currency):
            raise Conflict(f"transferId {transfer_id} was already recorded with a different amount or currency "
                           f"({found.public_id})", code="transfer_id_conflict", param="transferId")
        return found
    credited = InboundBankTransfer.objects.filter(organization=organization, transfer_id=transfer_id).first()
    if credited is not None:
        raise Conflict(f"transfer already credited: transferId {transfer_id} ({credited.public_id})",
                       code="transfer_already_credited", param="transferId")
    return None


def bank_transfer_unmatched_match(*, organization: Organization, unmatched_id: str, customer_id: str, actor: str,
                                  reason: str = "") -> InboundBankTransfer:
    """An operator matches a pending unmatched transfer to a customer: its amount is credited to that
    customer's balance (a ``bank_transfer`` balance transaction), the record becomes ``matched``.

    Locking: the unmatched row first (a second match is a 409), then as reconciliation. A transfer id
    credited meanwhile is a 409 and nothing is written. Audited with ``actor`` and ``reason``."""
    found = UnmatchedBankTransfer.objects.filter(organization=organization, public_id=unmatched_id).first()
    if found is None:
        raise NotFound("unmatched bank transfer not found", param="id")
    customer_id = (customer_id or "").strip()
    customer = core_services.customer_ensure(organization=organization, customer_id=customer_id)
    account, counter = customer_balance_services.bank_transfer_accounts(
        organization=organization, customer=customer_id, currency=found.currency)
    with transaction.atomic():
        unmatched = UnmatchedBankTransfer.objects.select_for_update().get(pk=found.pk)
        if unmatched.status != UnmatchedBankTransfer.STATUS_PENDING:
            raise Conflict("unmatched bank transfer is already matched", code="bank_transfer_already_matched")
        ref = unmatched.reference or "-"
        credit = _Credit(organization=organization, customer=customer, instruction=None, reference=unmatched.reference,
                         amount=unmatched.amount, currency=unmatched.currency, transfer_id=unmatched.transfer_id,
                         description=f"Bank transfer received (ref: {ref}, matched by an operator)", actor=actor,
                         account=account, counter=counter)
        inbound = _credit(credit, unmatched=unmatched)
        if inbound is None:
            raise Conflict(f"transfer already credited: transferId {unmatched.transfer_id}",
                           code="transfer_already_credited")
        core_services.audit_record(
            organization=organization, actor=actor, action="bank_transfer.match", object_type="unmatched_bank_transfer",
            object_id=unmatched.public_id, reason=reason,
            data={"customerId": customer_id, "amount": unmatched.amount, "currency": unmatched.currency,
                  "inboundTransferId": inbound.public_id,
                  "balanceTransactionId": inbound.customer_balance_transaction.public_id})
    return inbound
