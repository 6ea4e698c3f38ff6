"""The baseline for the usage benchmark: the cheapest honest DRF write endpoint.

Same authentication and permission classes as the product (``billing_project.core.api.auth``), same JSON
body parsing (``billing_project.core.api.inputs.body``), then ONE INSERT inside ``transaction.atomic()``.
What the product does on top of this (validation, account lookup, the locked running-balance UPDATE, the
journal header, two entries, the event, the deferred balance triggers) is what the ratio measures."""

from __future__ import annotations

from django.db import connection, transaction
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.auth import ApiKeyAuthentication, HasAdminScope
from billing_project.core.api.inputs import body

BASELINE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS bench_baseline (
    id bigserial PRIMARY KEY,
    organization_id bigint NOT NULL,
    customer varchar(255) NOT NULL,
    amount bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

_INSERT = "INSERT INTO bench_baseline (organization_id, customer, amount) VALUES (%s, %s, %s) RETURNING id"


class BaselineView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasAdminScope]

    def post(self, request):
        data = body(request)
        user, amount = data.get("user"), data.get("amount")
        if not isinstance(user, str) or not user or isinstance(amount, bool) or not isinstance(amount, int):
            raise ParseError()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_INSERT, [request.organization.pk, user, amount])
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id, "user": user, "amount": amount}, status=status.HTTP_201_CREATED)
