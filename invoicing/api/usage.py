"""``/usage`` and ``/zap`` as the ledger serves them, with the usage recorder that also meters the call.

They live here because recording usage now writes to two apps (ledger + meter events), and only a higher
app may orchestrate a lower one (STYLE §3)."""

from __future__ import annotations

from invoicing.services import usage as usage_services
from ledger.api import views as ledger_views


class UsageView(ledger_views.UsageView):
    usage_recorder = staticmethod(usage_services.usage_record_metered)


class ZapView(ledger_views.ZapView):
    usage_recorder = staticmethod(usage_services.usage_record_metered)
