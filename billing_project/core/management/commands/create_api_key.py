from django.core.management.base import BaseCommand

from billing_project.core import services


class Command(BaseCommand):
    help = "Create an admin API key (creating the organization if missing); prints only the secret."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", default="default", help="a label for the key")
        parser.add_argument("--org-name", default=None, help="display name when the organization is created")

    def handle(self, *args, org, name, org_name, **options):
        organization = services.organization_get_or_create(slug=org, name=org_name)
        _key, secret = services.api_key_create(organization=organization, name=name)
        self.stdout.write(secret)
