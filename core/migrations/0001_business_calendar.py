"""Step 2 of 3 of moving the business calendar here from exceptions: take over the models whose
tables exceptions.0005 renamed (state only; the tables and their rows are already there)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("exceptions", "0005_calendar_tables_renamed_for_core")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BusinessCalendar",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=100, unique=True)),
                        ("timezone", models.CharField(default="UTC", help_text="IANA name, e.g. Europe/Amsterdam.", max_length=64)),
                        (
                            "hours",
                            models.JSONField(
                                default=dict,
                                help_text=(
                                    'Weekday (0 = Monday) to working intervals, e.g. {"0": [["09:00", "17:00"]], '
                                    '"1": [["08:00", "12:00"], ["13:00", "17:00"]]}.'
                                ),
                            ),
                        ),
                    ],
                    options={"ordering": ["name"]},
                ),
                migrations.CreateModel(
                    name="Holiday",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("date", models.DateField()),
                        ("name", models.CharField(blank=True, max_length=100)),
                        (
                            "calendar",
                            models.ForeignKey(
                                on_delete=models.deletion.CASCADE, related_name="holidays", to="core.businesscalendar"
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["date"],
                        "constraints": [models.UniqueConstraint(fields=("calendar", "date"), name="holiday_unique_per_calendar")],
                    },
                ),
            ],
        ),
    ]
