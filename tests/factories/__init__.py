"""factory-boy factories. Ledger state is only ever created through services (transaction_post),
so no test builds a state production cannot."""

from __future__ import annotations

import factory

from billing_project.core.models import Organization


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
