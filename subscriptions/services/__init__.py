"""subscriptions services: ``plans``, ``subscriptions`` (lifecycle), ``billing`` (invoices of a period,
prorations), ``renewals`` (renew, dunning, sweeps), ``items``, ``render`` (response objects)."""
