from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from orders.models import Partner
from orders.services.partners import partner_ensure


class Command(BaseCommand):
    help = "Create a partner and its API user; prints only the API token (the existing one when the partner exists)."

    def add_arguments(self, parser):
        parser.add_argument("code", help="Short slug, e.g. acme-shop")
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", default=Partner.Kind.STOREFRONT, choices=Partner.Kind.values)

    def handle(self, *args, code, name, kind, **options):
        try:
            _, token, _ = partner_ensure(code=code, name=name, kind=kind)
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from None
        self.stdout.write(token)
