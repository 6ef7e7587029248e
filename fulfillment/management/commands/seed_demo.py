from django.core.management.base import BaseCommand

from fulfillment.demo import DEFAULT_ORDERS, seed_demo


class Command(BaseCommand):
    help = (
        "Create the demo data (idempotent): users per role, locations, SKUs with stock, partners, "
        "and a morning's orders through the real intake, routing and warehouse services."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--orders", type=int, default=DEFAULT_ORDERS, help=f"Orders to seed on the first run (default {DEFAULT_ORDERS})."
        )

    def handle(self, *args, orders: int, **options):
        summary = seed_demo(orders=orders)
        self.stdout.write(f"Demo users: {', '.join(summary['users'])}")
        self.stdout.write(f"Locations: {', '.join(summary['locations'])}; SKUs: {summary['skus']}")
        for code, token in summary["partners"].items():
            self.stdout.write(f"Partner {code}: API token {token}")
        queues = ", ".join(f"{slug} {count}" for slug, count in summary["exceptions_by_queue"].items())
        self.stdout.write(f"Open exceptions: {summary['exceptions']} ({summary['breached']} past due); by queue: {queues}")
        self.stdout.write("Orders by status: " + ", ".join(f"{k} {v}" for k, v in summary["orders_by_status"].items()))
