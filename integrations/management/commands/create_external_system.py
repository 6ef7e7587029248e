from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from integrations.models import Adapter, ExternalSystem, SystemKind
from integrations.services.systems import system_ensure


class Command(BaseCommand):
    help = (
        "Register a storefront, ERP or WMS and print only its webhook secret. Run again for an existing slug, "
        "it changes nothing and prints the current secret; --rotate-secret adds a new one beside the old "
        "(both accepted) and prints it; --retire-old-secret stops accepting the old one."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="e.g. wms-east; webhooks arrive at /integrations/<slug>/webhooks/")
        parser.add_argument("--kind", choices=SystemKind.values, required=False)
        parser.add_argument("--adapter", choices=Adapter.values, required=False)
        parser.add_argument("--base-url", default="", help="Where the outbox delivers its messages.")
        parser.add_argument("--locations", default="", help="Comma-separated location codes a WMS runs (none: every).")
        parser.add_argument("--partner", help="The partner whose orders a storefront sends.")
        parser.add_argument("--secret", help="Use this secret (Shopify: the app's secret) instead of a new one.")
        parser.add_argument("--rotate-secret", action="store_true")
        parser.add_argument("--retire-old-secret", action="store_true")

    def handle(self, *args, slug, kind, adapter, base_url, locations, partner, secret, **options):
        if not ExternalSystem.objects.filter(slug=slug).exists() and not (kind and adapter):
            raise CommandError("A new system needs --kind and --adapter.")
        try:
            registered = system_ensure(
                slug=slug,
                kind=kind or "",
                adapter=adapter or "",
                base_url=base_url,
                locations=locations.split(",") if locations else [],
                partner=partner,
                secret=secret,
                rotate_secret=options["rotate_secret"],
                retire_old_secret=options["retire_old_secret"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(registered.secret)
