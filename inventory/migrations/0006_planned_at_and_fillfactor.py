"""Leave room on each page of stock levels and suggestions, so that the nightly replenishment's update of
figures no index covers stays on its page (a HOT update) instead of writing every index again."""

from django.db import migrations, models

TABLES = ["inventory_stocklevel", "inventory_replenishmentsuggestion"]


def set_fillfactor(percent):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return  # SQLite keeps no free space per page
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {percent})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0005_positioning_and_replenishment"),
    ]

    operations = [
        migrations.AlterField(
            model_name="replenishmentsuggestion",
            name="position",
            field=models.IntegerField(help_text="On hand - reserved + on order, when suggested."),
        ),
        migrations.AlterField(
            model_name="stocklevel",
            name="planned_at",
            field=models.DateTimeField(blank=True, help_text="When replenishment last changed these figures.", null=True),
        ),
        migrations.RunPython(set_fillfactor(70), set_fillfactor(100)),
    ]
