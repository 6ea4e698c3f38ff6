#!/usr/bin/env python
"""Invoice PDF render time: median of N renders of a 20-line invoice (plus one cold render first).

  .venv/bin/python bench/pdf_bench.py [--renders 10] [--lines 20]

The invoice is built from unsaved model instances and handed to ``invoice_pdf_render`` with explicit
lines, so nothing touches the database: no server is started (a placeholder DATABASE_URL keeps the
settings happy; Django never connects to it, nor to the placeholder REDIS_URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # unused too
    os.environ.setdefault("SECRET_KEY", "pdf-bench-only-no-requests-are-served-0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    import django

    django.setup()


def _invoice(lines: int):
    from billing_project.core.models import Organization
    from invoicing.models import Invoice, InvoiceLineItem, InvoiceTaxLine

    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    invoice = Invoice(organization=Organization(slug="acme", name="Acme Corp"), customer="hanzo/alice",
                      customer_email="alice@hanzo.example", currency="usd", status=Invoice.STATUS_OPEN,
                      number=42, number_str="INV-0042", period_start=start, period_end=end,
                      finalized_at=end, due_date=datetime(2025, 3, 3, tzinfo=UTC), created_at=end)
    items = [InvoiceLineItem(invoice=invoice, description=f"API calls, region {n:02d}", quantity=1000 * n,
                             unit_price=3, amount=3000 * n, currency="usd", period_start=start, period_end=end)
             for n in range(1, lines + 1)]
    invoice.subtotal = sum(i.amount for i in items)
    invoice.tax = (invoice.subtotal * 875 + 5000) // 10000
    invoice.amount_due = invoice.total
    tax = InvoiceTaxLine(invoice=invoice, description="CA State Tax", percentage_bp=875, jurisdiction="US-CA",
                         taxable_amount=invoice.subtotal, amount=invoice.tax)
    return invoice, items, [tax]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--lines", type=int, default=20)
    args = parser.parse_args()
    _setup()
    from invoicing.pdf import invoice_pdf_render

    invoice, lines, tax_lines = _invoice(args.lines)
    began = time.perf_counter()
    pdf = invoice_pdf_render(invoice, lines=lines, tax_lines=tax_lines)
    cold_ms = (time.perf_counter() - began) * 1000
    samples = []
    for _ in range(args.renders):
        began = time.perf_counter()
        invoice_pdf_render(invoice, lines=lines, tax_lines=tax_lines)
        samples.append((time.perf_counter() - began) * 1000)
    print(f"invoice pdf, {args.lines} lines, {len(pdf):,} bytes: median {statistics.median(samples):.1f} ms "
          f"over {args.renders} renders (min {min(samples):.1f}, max {max(samples):.1f}; "
          f"first render incl. WeasyPrint import {cold_ms:.1f} ms)")


if __name__ == "__main__":
    main()
