"""Payments' part of ``manage.py ledger_audit`` (registered in ``PaymentsConfig.ready``).

Identities, recomputed from the entries:
- per payment intent: its ``payment_capture`` postings total its ``amount_received``, its ``processor_fee``
  postings its ``fee``, and its authorization memo (``payment_auth`` − ``payment_auth_release``) its
  ``amount_capturable`` while ``requires_capture`` (0 otherwise);
- per (organization, currency): the ``processor_clearing`` account holds Σ (amount_received − fee) of the
  intents, less the payouts that left for the bank (``transit_transaction_id`` set), the card refunds
  (intents' ``amount_refunded``) and the disputes holding or having lost funds — what the processor owes us;
- no ``processor_clearing`` postings other than these.
"""

from __future__ import annotations

from django.db import connection

_PER_INTENT = """
WITH posted AS (
    SELECT t.organization_id, t.metadata->>'paymentIntentId' AS pi,
           SUM(CASE WHEN t.type = 'payment_capture' THEN t.amount ELSE 0 END) AS captured,
           SUM(CASE WHEN t.type = 'processor_fee' THEN t.amount ELSE 0 END) AS fees,
           SUM(CASE WHEN t.type = 'payment_auth' THEN t.amount
                    WHEN t.type = 'payment_auth_release' THEN -t.amount ELSE 0 END) AS held
      FROM ledger_balancetransaction t
     WHERE t.type IN ('payment_capture', 'processor_fee', 'payment_auth', 'payment_auth_release')
     GROUP BY t.organization_id, t.metadata->>'paymentIntentId'
)
SELECT i.public_id, i.amount_received, COALESCE(p.captured, 0), i.fee, COALESCE(p.fees, 0),
       CASE WHEN i.status = 'requires_capture' THEN i.amount_capturable ELSE 0 END, COALESCE(p.held, 0)
  FROM payments_paymentintent i
  LEFT JOIN posted p ON p.organization_id = i.organization_id AND p.pi = i.public_id
 WHERE i.amount_received <> COALESCE(p.captured, 0) OR i.fee <> COALESCE(p.fees, 0)
    OR CASE WHEN i.status = 'requires_capture' THEN i.amount_capturable ELSE 0 END <> COALESCE(p.held, 0)
 LIMIT 100
"""

_CLEARING = """
WITH moves AS (
    SELECT organization_id, currency, amount_received - fee AS amount FROM payments_paymentintent
    UNION ALL
    SELECT organization_id, currency, -amount FROM payments_payout WHERE transit_transaction_id <> ''
    UNION ALL
    SELECT organization_id, currency, -amount_refunded FROM payments_paymentintent
    UNION ALL
    SELECT organization_id, currency, -amount FROM payments_dispute WHERE funds IN ('held', 'lost')
), owed AS (
    SELECT organization_id, currency, SUM(amount) AS owed FROM moves GROUP BY organization_id, currency
), posted AS (
    SELECT a.organization_id, a.currency,
           COALESCE(SUM(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END), 0) AS net
      FROM ledger_account a LEFT JOIN ledger_entry e ON e.account_id = a.id
     WHERE a.kind = 'processor_clearing'
     GROUP BY a.organization_id, a.currency
)
SELECT COALESCE(p.organization_id, o.organization_id), COALESCE(p.currency, o.currency), COALESCE(p.net, 0),
       COALESCE(o.owed, 0)
  FROM posted p FULL OUTER JOIN owed o ON o.organization_id = p.organization_id AND o.currency = p.currency
 WHERE COALESCE(p.net, 0) <> COALESCE(o.owed, 0)
 LIMIT 100
"""


def payments_ledger_drift() -> list[str]:
    """One line per intent or clearing account whose entries differ from what the intents say."""
    lines: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(_PER_INTENT)
        for pi, received, captured, fee, fees, capturable, held in cursor.fetchall():
            lines.append(f"payment intent {pi}: received {received} / captures {captured}, fee {fee} / fee "
                         f"postings {fees}, capturable {capturable} / authorization memo {held}")
        cursor.execute(_CLEARING)
        for org_id, currency, net, owed in cursor.fetchall():
            lines.append(f"processor clearing {currency} (org {org_id}): entries {net} != intents' received − fees "
                         f"{owed}")
    return lines
