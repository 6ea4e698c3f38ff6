"""Stub: filled in by its owner."""

from rest_framework.views import APIView


class InvoicePdfView(APIView):
    pass
