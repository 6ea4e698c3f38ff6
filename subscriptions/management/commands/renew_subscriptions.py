import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing_project.core.times import parse_rfc3339
from subscriptions.services import runner


class Command(BaseCommand):
    help = ("Renew every due subscription, end trials and period-end cancels, and run due dunning retries, "
            "inline (what the beat sweeper does, in this process).")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count what is due")
        parser.add_argument("--until", default="", help="RFC 3339 time to treat as now (default: now)")

    def handle(self, *args, **options):
        now = timezone.now()
        if options["until"]:
            now = parse_rfc3339(options["until"])
            if now is None:
                raise CommandError("--until must be an RFC 3339 timestamp")
        counts = runner.due_counts(now=now)
        if options["dry_run"]:
            self.stdout.write(f"due at {now.isoformat()}: {counts['subscriptions']} subscriptions, "
                              f"{counts['retries']} dunning retries (dry run: nothing done)")
            return

        def progress(done: int, total: int) -> None:
            width = 30
            filled = width * done // max(total, 1)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            sys.stderr.flush()

        summary = runner.run_due(now=now, progress=progress)
        sys.stderr.write("\n")
        parts = ", ".join(f"{key}: {value}" for key, value in sorted(summary.items())) or "nothing due"
        self.stdout.write(f"processed at {now.isoformat()}: {parts}")
