"""Invoicing's part of ``manage.py ledger_audit`` (registered in ``InvoicingConfig.ready``).

Two identities between the invoices and the ledger, both recomputed from entries:
- each customer ``receivable`` account (per organization, customer, currency) holds exactly Σ ``amount_due``
  of that customer's open invoices in that currency;
- each invoice's own receivable postings (its finalize, collection, void and write-off transactions, its
  credit notes' and its customer-balance transactions') net to its ``amount_due`` while it is open, and to
  0 in every other status.
"""

from __future__ import annotations

from django.db import connection

_CUSTOMER_RECEIVABLES = """
WITH owed AS (
    SELECT organization_id, customer, currency, SUM(amount_due) AS due
      FROM invoicing_invoice WHERE status = 'open' GROUP BY organization_id, customer, currency
), posted AS (
    SELECT a.organization_id, a.customer, a.currency,
           COALESCE(SUM(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END), 0) AS net
      FROM ledger_account a LEFT JOIN ledger_entry e ON e.account_id = a.id
     WHERE a.kind = 'receivable'
     GROUP BY a.organization_id, a.customer, a.currency
)
SELECT COALESCE(p.organization_id, o.organization_id), COALESCE(p.customer, o.customer),
       COALESCE(p.currency, o.currency), COALESCE(p.net, 0), COALESCE(o.due, 0)
  FROM posted p FULL OUTER JOIN owed o
    ON o.organization_id = p.organization_id AND o.customer = p.customer AND o.currency = p.currency
 WHERE COALESCE(p.net, 0) <> COALESCE(o.due, 0)
 LIMIT 100
"""

_INVOICE_POSTINGS = """
WITH sources AS (
    SELECT i.id AS invoice_id, 'invoice' AS source_type, i.public_id AS source_id FROM invoicing_invoice i
    UNION ALL
    SELECT n.invoice_id, 'credit_note', n.public_id FROM invoicing_creditnote n
    UNION ALL
    SELECT i.id, 'customer_balance_transaction', c.public_id
      FROM ledger_customerbalancetransaction c
      JOIN invoicing_invoice i ON i.public_id = c.invoice_id AND i.organization_id = c.organization_id
     WHERE c.invoice_id <> ''
), net AS (
    SELECT s.invoice_id, SUM(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END) AS net
      FROM sources s
      JOIN ledger_balancetransaction t ON t.source_type = s.source_type AND t.source_id = s.source_id
      JOIN ledger_entry e ON e.transaction_id = t.id
      JOIN ledger_account a ON a.id = e.account_id AND a.kind = 'receivable'
     GROUP BY s.invoice_id
)
SELECT i.public_id, i.status, i.amount_due, COALESCE(n.net, 0)
  FROM invoicing_invoice i LEFT JOIN net n ON n.invoice_id = i.id
 WHERE COALESCE(n.net, 0) <> CASE WHEN i.status = 'open' THEN i.amount_due ELSE 0 END
 LIMIT 100
"""


def invoice_ledger_drift() -> list[str]:
    """One line per receivable or invoice whose posted entries differ from what the invoices say."""
    lines: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_RECEIVABLES)
        for org_id, customer, currency, net, due in cursor.fetchall():
            lines.append(f"receivable of {customer} {currency} (org {org_id}): entries {net} != "
                         f"open invoices' amount due {due}")
        cursor.execute(_INVOICE_POSTINGS)
        for public_id, status, amount_due, net in cursor.fetchall():
            expected = amount_due if status == "open" else 0
            lines.append(f"invoice {public_id} ({status}): receivable postings {net} != {expected}")
    return lines
