"""Back office for payments (STYLE §9). Each area has its own module, registered on import."""

from payments import (
    admin_intents,  # noqa: F401
    admin_refunds,  # noqa: F401
)
