from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orders.services.replenishment import replenish


class Command(BaseCommand):
    help = (
        "Measure each SKU's daily demand at each location, set its safety stock and reorder point, and propose "
        "a replenishment wherever the stock position is at or below it (as the nightly job does)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="Days of order lines to measure demand over (default: 28).")

    def handle(self, *args, days, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be 1 or more.")
        console = Console(file=self.stderr._out, stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=options["verbosity"] == 0,
        ) as bar:
            task = bar.add_task("SKU slices planned", total=None)
            result = replenish(days=days, progress=lambda done, total: bar.update(task, completed=done, total=total))
        self.stdout.write(
            f"{result.levels_updated} stock levels planned from {result.days} days of demand; "
            f"{result.suggestions_written} suggestions proposed or refreshed, {result.suggestions_withdrawn} withdrawn."
        )
