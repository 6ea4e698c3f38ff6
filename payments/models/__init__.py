"""payments models, one module per aggregate; each is imported here so Django finds it."""

from payments.models.bank_transfers import (  # noqa: F401
    BankTransferInstruction,
    InboundBankTransfer,
    UnmatchedBankTransfer,
)
from payments.models.disputes import Dispute  # noqa: F401
from payments.models.intents import PaymentAttempt, PaymentIntent  # noqa: F401
from payments.models.methods import PaymentMethod  # noqa: F401
from payments.models.payouts import Payout  # noqa: F401
from payments.models.refunds import Refund  # noqa: F401
from payments.models.sandbox import SandboxOperation  # noqa: F401
from payments.models.settings import OrganizationPaymentSettings  # noqa: F401
from payments.models.setup_intents import SetupIntent  # noqa: F401
