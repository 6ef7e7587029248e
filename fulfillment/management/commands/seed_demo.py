from django.core.management.base import BaseCommand

from fulfillment.demo import seed_demo


class Command(BaseCommand):
    help = "Create the demo data (idempotent): users per role, locations, SKUs with stock, partners, orders in every state."

    def handle(self, *args, **options):
        summary = seed_demo()
        self.stdout.write(f"Demo users: {', '.join(summary['users'])}")
        self.stdout.write(f"Locations: {', '.join(summary['locations'])}; SKUs: {summary['skus']}")
        for code, token in summary["partners"].items():
            self.stdout.write(f"Partner {code}: API token {token}")
        self.stdout.write(f"Exceptions: {summary['exceptions']}")
        self.stdout.write("Orders by status: " + ", ".join(f"{k} {v}" for k, v in summary["orders_by_status"].items()))
