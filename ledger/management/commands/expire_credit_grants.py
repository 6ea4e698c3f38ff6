from django.core.management.base import BaseCommand

from ledger.services import credits as credit_services


class Command(BaseCommand):
    help = "Expire every due credit grant once (what the beat sweeper does, in this process)."

    def handle(self, *args, **options):
        summary = credit_services.credit_grants_expire()
        amounts = ", ".join(f"{amount} {currency}" for currency, amount in sorted(summary["amounts"].items())) or "0"
        self.stdout.write(f"grants due: {summary['due']}; expired: {summary['expired']}; "
                          f"amount expired (minor units): {amounts}")
