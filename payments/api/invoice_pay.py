"""``POST /invoices/:id/pay`` (spec invoicing.md §8): served by payments because collection may charge the
customer's default payment method, two-phase (``payments.services.collection``). Outside the request
transaction: the service commits its own short transactions around the processor call."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project.core.api.inputs import api_actor, optional_body
from invoicing.api.invoices import PayOut
from invoicing.services import invoice_render
from payments.services import collection as collection_services


class InvoicePayView(APIView):
    request_transaction = False  # may call the payment processor: no transaction around it

    @extend_schema(request=None, responses=PayOut, operation_id="invoices_pay_create",
                   summary="Collect: credits → customer balance → deposits, then the default payment method for "
                           "the rest (two-phase); without one, all or nothing")
    def post(self, request, invoice_id: str):
        optional_body(request)  # an action takes no body or a JSON object; anything else is 400
        invoice, result = collection_services.invoice_collect(organization=request.organization,
                                                              invoice_id=invoice_id, actor=api_actor(request))
        return Response({"invoice": invoice_render.invoice_data(invoice),
                         "collection": invoice_render.collection_data(result)})


urlpatterns = [path("invoices/<str:invoice_id>/pay", InvoicePayView.as_view(), name="invoice-pay")]
