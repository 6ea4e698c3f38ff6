"""Set-default racing detach on real PostgreSQL: both lock the customer row, then the method, so the default
never ends up naming a detached method."""

from __future__ import annotations

import pytest

from billing_project.core.errors import NotFound
from billing_project.core.models import Customer
from payments.models import PaymentMethod
from payments.services import customers as customer_services
from payments.services import methods as method_services
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("round_", range(3))
def test_default_never_names_a_detached_method(org_acme, round_):
    customer_id = f"race-{round_}"
    methods = [method_services.payment_method_create(organization=org_acme, customer_id=customer_id,
                                                     card=method_services.CardInput(brand="visa", last4=f"{i:04d}"))
               for i in range(4)]

    def work(i: int):
        method = methods[i // 2]
        if i % 2:
            return method_services.payment_method_detach(organization=org_acme, payment_method_id=method.public_id)
        return customer_services.customer_default_payment_method_set(
            organization=org_acme, customer_id=customer_id, payment_method_id=method.public_id)

    run_threads(8, work, catch=(NotFound,))
    default = Customer.objects.get(organization=org_acme, customer_id=customer_id).default_payment_method_id
    assert not PaymentMethod.objects.filter(customer__customer_id=customer_id, detached_at__isnull=True).exists()
    assert default == ""
