from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.actors import Actor
from inventory.catalog import CatalogFileError, catalog_import


class Command(BaseCommand):
    help = "Upsert locations, SKUs and stock from CSV files; a bad row rejects the whole import."

    def add_arguments(self, parser):
        parser.add_argument("--locations", type=Path, help="CSV: code,name,kind,country,region,postal_prefixes,ships_to")
        parser.add_argument("--skus", type=Path, help="CSV: code,name,uom,case_pack,unit_price,substitutes")
        parser.add_argument("--stock", type=Path, help="CSV: location,sku,on_hand,safety_stock,reorder_point,lead_time_days")

    def handle(self, *args, locations, skus, stock, **options):
        if not (locations or skus or stock):
            raise CommandError("Give at least one of --locations, --skus, --stock.")
        console = Console(file=self.stderr._out, stderr=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=options["verbosity"] == 0,
        ) as bar:

            def progress(rows, label, total):
                return bar.track(rows, total=total, description=label)

            try:
                summary = catalog_import(
                    actor=Actor.job("import_catalog"), locations=locations, skus=skus, stock=stock, progress=progress
                )
            except CatalogFileError as exc:
                raise CommandError(f"nothing imported:\n{exc.message}") from None
        for path, file_summary in summary.files.items():
            self.stdout.write(f"{path}: {file_summary}")
