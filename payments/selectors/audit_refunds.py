"""Refunds' and disputes' part of ``manage.py ledger_audit`` (registered in ``PaymentsConfig.ready``).

Identities, recomputed from the rows and the entries:
- each succeeded refund with a card part has exactly one ``payment_refund`` posting of ``card_amount``
  (source: the refund); pending and failed refunds have none;
- per payment intent: ``amount_refunded`` = Σ ``card_amount`` of its succeeded refunds;
- per invoice: ``amount_refunded`` = Σ ``amount`` of its succeeded refunds and ``refunds_pending`` = Σ of its
  pending ones;
- per dispute: one ``dispute_hold`` of its amount; one ``dispute_release`` iff its funds were reinstated, one
  ``dispute_loss`` iff lost; nothing else.
The processor-clearing identity (what the processor owes us) is lowered by Σ intents' ``amount_refunded`` and
Σ disputes whose funds are held or lost (``clearing_refunds_and_disputes``).
"""

from __future__ import annotations

from django.db import connection

_REFUND_POSTINGS = """
SELECT r.public_id, r.status, r.card_amount, COUNT(t.id), COALESCE(SUM(t.amount), 0)
  FROM payments_refund r
  LEFT JOIN ledger_balancetransaction t
         ON t.organization_id = r.organization_id AND t.type = 'payment_refund' AND t.source_type = 'refund'
        AND t.source_id = r.public_id
 GROUP BY r.id
HAVING (r.status = 'succeeded' AND r.card_amount > 0 AND (COUNT(t.id) <> 1 OR SUM(t.amount) <> r.card_amount))
    OR ((r.status <> 'succeeded' OR r.card_amount = 0) AND COUNT(t.id) <> 0)
 LIMIT 100
"""

_INTENTS = """
SELECT i.public_id, i.amount_refunded, COALESCE(SUM(r.card_amount) FILTER (WHERE r.status = 'succeeded'), 0)
  FROM payments_paymentintent i LEFT JOIN payments_refund r ON r.payment_intent_id = i.id
 GROUP BY i.id
HAVING i.amount_refunded <> COALESCE(SUM(r.card_amount) FILTER (WHERE r.status = 'succeeded'), 0)
 LIMIT 100
"""

_INVOICES = """
SELECT v.public_id, v.amount_refunded, COALESCE(SUM(r.amount) FILTER (WHERE r.status = 'succeeded'), 0),
       v.refunds_pending, COALESCE(SUM(r.amount) FILTER (WHERE r.status = 'pending'), 0)
  FROM invoicing_invoice v LEFT JOIN payments_refund r ON r.invoice_id = v.id
 WHERE v.amount_refunded <> 0 OR v.refunds_pending <> 0 OR r.id IS NOT NULL
 GROUP BY v.id
HAVING v.amount_refunded <> COALESCE(SUM(r.amount) FILTER (WHERE r.status = 'succeeded'), 0)
    OR v.refunds_pending <> COALESCE(SUM(r.amount) FILTER (WHERE r.status = 'pending'), 0)
 LIMIT 100
"""

_DISPUTES = """
SELECT d.public_id, d.funds, d.amount,
       COALESCE(SUM(t.amount) FILTER (WHERE t.type = 'dispute_hold'), 0),
       COALESCE(SUM(t.amount) FILTER (WHERE t.type = 'dispute_release'), 0),
       COALESCE(SUM(t.amount) FILTER (WHERE t.type = 'dispute_loss'), 0)
  FROM payments_dispute d
  LEFT JOIN ledger_balancetransaction t
         ON t.organization_id = d.organization_id AND t.source_type = 'dispute' AND t.source_id = d.public_id
 GROUP BY d.id
HAVING COALESCE(SUM(t.amount) FILTER (WHERE t.type = 'dispute_hold'), 0) <> d.amount
    OR COALESCE(SUM(t.amount) FILTER (WHERE t.type = 'dispute_release'), 0)
       <> CASE WHEN d.funds = 'released' THEN d.amount ELSE 0 END
    OR COALESCE(SUM(t.amount) FILTER (WHERE t.type = 'dispute_loss'), 0)
       <> CASE WHEN d.funds = 'lost' THEN d.amount ELSE 0 END
 LIMIT 100
"""

CLEARING_REFUNDS_AND_DISPUTES = """
SELECT organization_id, currency, SUM(amount) FROM (
    SELECT organization_id, currency, amount_refunded AS amount FROM payments_paymentintent
    UNION ALL
    SELECT organization_id, currency, amount FROM payments_dispute WHERE funds IN ('held', 'lost')
) moved GROUP BY organization_id, currency
"""


def clearing_refunds_and_disputes() -> dict[tuple[int, str], int]:
    """Per (organization id, currency): what refunds and disputes took out of processor clearing."""
    with connection.cursor() as cursor:
        cursor.execute(CLEARING_REFUNDS_AND_DISPUTES)
        return {(org_id, currency): int(total) for org_id, currency, total in cursor.fetchall()}


def refunds_ledger_drift() -> list[str]:
    """One line per refund, intent, invoice or dispute whose figures differ from its postings."""
    lines: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(_REFUND_POSTINGS)
        for refund_id, status, card, count, posted in cursor.fetchall():
            lines.append(f"refund {refund_id} ({status}): card part {card} / {count} refund postings of {posted}")
        cursor.execute(_INTENTS)
        for intent_id, refunded, from_refunds in cursor.fetchall():
            lines.append(f"payment intent {intent_id}: amount_refunded {refunded} != succeeded refunds {from_refunds}")
        cursor.execute(_INVOICES)
        for invoice_id, refunded, succeeded, pending, in_flight in cursor.fetchall():
            lines.append(f"invoice {invoice_id}: amount_refunded {refunded} / succeeded refunds {succeeded}, "
                         f"refunds_pending {pending} / pending refunds {in_flight}")
        cursor.execute(_DISPUTES)
        for dispute_id, funds, amount, held, released, lost in cursor.fetchall():
            lines.append(f"dispute {dispute_id} ({funds}, {amount}): held {held}, released {released}, lost {lost}")
    return lines
