"""Invoice lines: the input a caller gives for one line, and how it becomes a validated, unsaved
``InvoiceLineItem`` (amount rule, type, client id unique within the invoice, the invoice's currency).
Shared by invoice drafts and credit notes (``line_amount``); nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_project.core.errors import ValidationError
from billing_project.core.money import INT64_MAX, INT64_MIN
from invoicing.models import Invoice, InvoiceLineItem


@dataclass(frozen=True)
class LineInput:
    description: str
    id: str = ""
    amount: int = 0
    quantity: int = 0
    unit_price: int = 0
    type: str = ""
    meter_id: str = ""
    plan_id: str = ""
    plan_name: str = ""
    currency: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None



def check_int64(value: int, param: str) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(f"{param} is out of range", param=param)


def line_amount(*, amount: int, quantity: int, unit_price: int) -> int:
    """A line's amount as given; 0 with a positive quantity and a non-zero unit price becomes their product
    (shared by invoice and credit-note lines). The original multiplies only a positive unit price and
    stores 0 for a negative one; we keep the product, a credit line (issue 9b): never a silent 0."""
    if amount == 0 and quantity > 0 and unit_price != 0:
        return quantity * unit_price
    return amount


def _line_amount(line: LineInput, param: str) -> int:
    amount = line_amount(amount=line.amount, quantity=line.quantity, unit_price=line.unit_price)
    prefix = f"{param}." if param != "body" else ""
    check_int64(amount, f"{prefix}unitPrice" if line.amount == 0 else f"{prefix}amount")
    return amount


def _line_type(line: LineInput) -> str:
    if line.type:
        return line.type
    if line.plan_id:
        return InvoiceLineItem.TYPE_SUBSCRIPTION
    if line.meter_id:
        return InvoiceLineItem.TYPE_USAGE
    return InvoiceLineItem.TYPE_ONE_OFF


def line_build(invoice: Invoice, line: LineInput, param: str, taken_ids: set[str]) -> InvoiceLineItem:
    """Validate one line and build it (unsaved). ``taken_ids``: the ids already used on the invoice (client
    and server ids); a client id is added to it."""
    if line.id:
        if line.id in taken_ids:
            id_param = f"{param}.id" if param != "body" else "id"
            raise ValidationError(f"{id_param} {line.id!r} is already used by another line of this invoice",
                                  param=id_param)
        taken_ids.add(line.id)
    if not line.description.strip():
        raise ValidationError(f"{param}.description is required" if param != "body" else "description is required",
                              param=f"{param}.description" if param != "body" else "description")
    if line.type and line.type not in InvoiceLineItem.TYPES:
        raise ValidationError(f"{param}.type must be one of {', '.join(InvoiceLineItem.TYPES)}", param=f"{param}.type")
    if line.currency and line.currency != invoice.currency:
        raise ValidationError(f"{param}.currency must be the invoice's currency ({invoice.currency})",
                              param=f"{param}.currency")
    return InvoiceLineItem(invoice=invoice, client_id=line.id, type=_line_type(line),
                           description=line.description.strip(),
                           meter_id=line.meter_id, quantity=line.quantity, unit_price=line.unit_price,
                           plan_id=line.plan_id, plan_name=line.plan_name, amount=_line_amount(line, param),
                           currency=invoice.currency, period_start=line.period_start, period_end=line.period_end)
