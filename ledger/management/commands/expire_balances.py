from django.core.management.base import BaseCommand

from ledger import services


class Command(BaseCommand):
    help = "Expire every due lot and pending hold once (what the beat sweepers do, in this process)."

    def handle(self, *args, **options):
        lots = services.balances_expire()
        holds = services.holds_expire()
        self.stdout.write(
            f"lots due: {lots['lots']}; expiry transactions: {lots['expired_transactions']}; "
            f"amount expired: {lots['expired_amount']} (minor units); holds expired: {holds}"
        )
