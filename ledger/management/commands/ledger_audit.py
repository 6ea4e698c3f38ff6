from django.core.management.base import BaseCommand, CommandError

from ledger import selectors


class Command(BaseCommand):
    help = ("Recompute every wallet's running balance, holds and expiring amount from entries and lots, and "
            "check debits = credits; exits 1 on any difference.")

    def handle(self, *args, **options):
        report = selectors.ledger_audit()
        self.stdout.write(f"accounts checked: {report.accounts_checked}")
        for line in report.drift:
            self.stdout.write(f"drift: {line}")
        for line in report.imbalances:
            self.stdout.write(f"imbalance: {line}")
        if not report.ok:
            raise CommandError(
                f"ledger audit failed: {len(report.drift)} drift, {len(report.imbalances)} imbalance line(s)"
            )
        self.stdout.write("ledger audit ok")
