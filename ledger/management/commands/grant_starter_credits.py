import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from billing_project.core.errors import ApplicationError, Conflict
from billing_project.core.models import Organization
from ledger import services
from ledger.models import BalanceTransaction


def _users(*, users: list[str], file: str | None) -> list[str]:
    found = [u.strip() for u in users]
    if file:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}")
        found += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return list(dict.fromkeys(u for u in found if u))  # in order, each once


class Command(BaseCommand):
    help = ("Grant the starter credit to each user once (safe to re-run: a user who already has it is "
            "counted, not granted twice). Exits 1 if any grant failed.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--user", action="append", default=[], help="a user id (repeatable)")
        parser.add_argument("--file", help="a file with one user id per line (blank lines and # comments skipped)")
        parser.add_argument("--dry-run", action="store_true", help="report who would be granted; write nothing")

    def handle(self, *args, org, user, file, dry_run, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        users = _users(users=user, file=file)
        if not users:
            raise CommandError("no users: pass --user and/or --file")

        granted, already, failed = 0, 0, []
        progress = tqdm(users, desc="starter credits", unit="user", file=options.get("stderr") or sys.stderr)
        for name in progress:
            if dry_run:
                key = f"{services.STARTER_CREDIT_TAG}:{name}"
                if BalanceTransaction.objects.filter(organization=organization, idempotency_key=key).exists():
                    already += 1
                else:
                    granted += 1
                continue
            try:
                services.starter_credit_grant(organization=organization, user=name)
            except Conflict as exc:
                if exc.code != "starter_credit_already_granted":
                    failed.append((name, exc.message))
                    continue
                already += 1
            except ApplicationError as exc:
                failed.append((name, exc.message))
            except DatabaseError as exc:  # e.g. a user id too long for the column: report it, go on
                failed.append((name, str(exc).strip().splitlines()[0]))
            else:
                granted += 1
        progress.close()

        for name, reason in failed:
            self.stderr.write(f"failed: {name}: {reason}")
        if dry_run:
            self.stdout.write(f"dry run, nothing written: would grant {granted}, already had {already} "
                              f"({len(users)} user(s), org {organization.slug})")
            return
        self.stdout.write(f"granted {granted}, already had {already}, failed {len(failed)} "
                          f"({len(users)} user(s), org {organization.slug})")
        if failed:
            raise CommandError(f"{len(failed)} grant(s) failed")
