from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing_project.core import services
from billing_project.core.embedded import write_private


class Command(BaseCommand):
    help = "Create an admin API key (creating the organization if missing); prints only the secret."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", default="default", help="a label for the key")
        parser.add_argument("--org-name", default=None, help="display name when the organization is created")
        parser.add_argument(
            "--key-file", default=None,
            help="keep the secret in this file (mode 0600): reuse the key it holds while that is an active "
                 "admin key of the organization, otherwise create one and write it there (make run's demo key)",
        )

    def handle(self, *args, org, name, org_name, key_file, **options):
        organization = services.organization_get_or_create(slug=org, name=org_name)
        if key_file is None:
            _key, secret = services.api_key_create(organization=organization, name=name)
            self.stdout.write(secret)
            return
        key_file = Path(key_file)
        try:
            kept = key_file.read_text().strip() if key_file.exists() else ""
        except OSError as exc:
            raise CommandError(f"cannot read {key_file}: {exc}") from exc
        _key, secret, created = services.api_key_reuse_or_create(organization=organization, name=name,
                                                                 secret=kept or None)
        if created:
            write_private(key_file, secret + "\n")
        else:
            key_file.chmod(0o600)
        self.stdout.write(secret)
