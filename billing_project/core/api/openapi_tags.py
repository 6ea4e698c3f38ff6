"""The API's operation tags (plain data, read by settings and by ``schema.postprocess_tags_and_errors``).

``TAGS``: the groups Swagger UI shows, in this order, with their descriptions. ``PATH_TAGS``: the first path
segment after ``/billing/`` → its tag. A new resource adds its segment here (a test fails until it does).
"""

TAGS = [
    {"name": "ledger", "description": "Prepaid wallets of IAM users: balance, usage, deposits, starter credit, "
                                      "refunds."},
    {"name": "holds", "description": "Authorizations: reserve part of a wallet, then capture or release it."},
    {"name": "credits", "description": "Credit grants (promotional or purchased) and the credit balance."},
    {"name": "meters", "description": "What is measured and how it is aggregated."},
    {"name": "meter events", "description": "Usage events and their summaries per period."},
    {"name": "pricing", "description": "Pricing rules and the invoice preview they rate."},
    {"name": "invoices", "description": "Draft → open → paid / void / uncollectible; line items, discounts, tax, "
                                        "payment, PDF."},
    {"name": "credit notes", "description": "Reductions of an invoice after the fact."},
    {"name": "customer balance", "description": "Money held for (or owed by) a customer, and its journal."},
    {"name": "tax", "description": "Tax rates by jurisdiction."},
    {"name": "plans", "description": "What subscriptions are sold from."},
    {"name": "subscriptions", "description": "Subscriptions, their items and schedules."},
    {"name": "payments", "description": "Customers, payment methods, payment and setup intents, refunds, disputes."},
    {"name": "payouts", "description": "Money paid out to the organization."},
    {"name": "webhooks", "description": "Webhook endpoints."},
    {"name": "events", "description": "Billing events: every state change, newest first."},
    {"name": "portal", "description": "Customer portal."},
    {"name": "zap", "description": "ZAP-over-HTTP: the ledger's methods through one dispatch endpoint."},
]

PATH_TAGS = {
    "balance": "ledger", "usage": "ledger", "deposit": "ledger", "credit": "ledger", "refund": "ledger",
    "holds": "holds",
    "credit-grants": "credits", "credit-balance": "credits",
    "meters": "meters",
    "meter-events": "meter events",
    "pricing-rules": "pricing", "invoice-preview": "pricing",
    "invoices": "invoices",
    "credit-notes": "credit notes",
    "customer-balance": "customer balance", "balance-transactions": "customer balance",
    "bank-transfer-instructions": "customer balance", "reconciliation": "customer balance",
    "bank-transfers": "customer balance",
    "tax-rates": "tax",
    "plans": "plans",
    "subscriptions": "subscriptions", "subscription-items": "subscriptions",
    "subscription-schedules": "subscriptions", "test-clocks": "subscriptions",
    "payment-methods": "payments", "payment-intents": "payments", "setup-intents": "payments",
    "refunds": "payments", "disputes": "payments", "customers": "payments",
    "payouts": "payouts",
    "webhook-endpoints": "webhooks", "deliveries": "webhooks",
    "events": "events",
    "portal": "portal", "capabilities": "portal",
    "zap": "zap",
}
