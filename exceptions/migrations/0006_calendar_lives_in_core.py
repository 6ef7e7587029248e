"""Step 3 of 3 of moving the business calendar to core: SLA policies point at core's model, and
this app forgets its own (state only; the tables now belong to core)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0005_calendar_tables_renamed_for_core"), ("core", "0001_business_calendar")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="slapolicy",
                    name="calendar",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="Empty: the clock runs around the clock.",
                        null=True,
                        on_delete=models.deletion.PROTECT,
                        to="core.businesscalendar",
                    ),
                ),
                migrations.DeleteModel(name="Holiday"),
                migrations.DeleteModel(name="BusinessCalendar"),
            ],
        ),
    ]
