from django.core.management.base import BaseCommand

from ledger import services


class Command(BaseCommand):
    help = "Expire every due lot and pending hold once (what the beat sweepers do, in this process)."

    def handle(self, *args, **options):
        lots = services.balances_expire()
        holds = services.holds_expire()
        expired = ", ".join(f"{amount} {currency}" for currency, amount in sorted(lots["expired"].items())) or "0"
        self.stdout.write(
            f"lots due: {lots['lots']}; expiry transactions: {lots['expired_transactions']}; "
            f"amount expired (minor units): {expired}; holds expired: {holds}"
        )
