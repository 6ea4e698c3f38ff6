"""payments models, one module per aggregate; each is imported here so Django finds it."""

from payments.models.disputes import Dispute  # noqa: F401
from payments.models.intents import PaymentAttempt, PaymentIntent  # noqa: F401
from payments.models.methods import PaymentMethod  # noqa: F401
from payments.models.refunds import Refund  # noqa: F401
from payments.models.sandbox import SandboxOperation  # noqa: F401
