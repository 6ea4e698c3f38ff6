"""The invoice row lock covers the invoice row only. Locking the joined organization row as well (a bare
``select_for_update()`` with ``select_related("organization")``) blocked every foreign-key check on the
organization until commit, so paying an invoice while the same customer's credits were burned elsewhere
deadlocked: pay held the organization and waited for the grants, the burn held the grants and waited for
the organization."""

from __future__ import annotations

import pytest

from billing_project.core.errors import Conflict
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger import selectors
from ledger import services as ledger_services
from ledger.models import CreditGrant
from ledger.services import credits as credit_services
from ledger.services.credits import Charge
from tests.threads import run_threads


@pytest.mark.django_db(transaction=True)
def test_paying_an_invoice_while_credits_burn_elsewhere_does_not_deadlock(org_acme):
    for round_ in range(4):
        customer = f"lock/{round_}"
        credit_services.credit_grant_create(organization=org_acme, user=customer, amount_cents=1_000)
        ledger_services.deposit_create(organization=org_acme, user=customer, amount=2_000, currency="usd")
        invoice = invoice_services.invoice_create(organization=org_acme, customer=customer,
                                                  lines=[LineInput(description="fee", amount=1_500)])
        invoice_services.invoice_finalize(organization=org_acme, invoice_id=invoice.public_id)

        def worker(i: int, invoice_id=invoice.public_id, customer=customer, round_=round_):
            if i == 0:
                return invoice_services.invoice_pay(organization=org_acme, invoice_id=invoice_id)[1]
            return credit_services.burn_credits(organization=org_acme, user=customer, currency="usd",
                                                charges=[Charge(amount=300)], idempotency_key=f"elsewhere-{round_}")

        paid, burn = run_threads(2, worker, catch=(Conflict,))
        assert paid.success and burn.applied == 300 or paid.credit_used == 1_000 and burn.applied == 0
        assert paid.credit_used + burn.applied == 1_000 - sum(
            CreditGrant.objects.filter(customer=customer).values_list("remaining_cents", flat=True))
    assert selectors.ledger_audit().ok
