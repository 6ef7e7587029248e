"""The seeded office calendar (exceptions.0002 created it) keeps Dutch public holidays: it is Amsterdam's."""

from django.db import migrations

OFFICE_CALENDAR = "Office hours (Amsterdam)"


def office_in_the_netherlands(apps, schema_editor):
    apps.get_model("core", "BusinessCalendar").objects.filter(name=OFFICE_CALENDAR, country="").update(country="NL")


class Migration(migrations.Migration):
    dependencies = [("core", "0002_calendar_country_and_subdivision")]

    operations = [migrations.RunPython(office_in_the_netherlands, migrations.RunPython.noop)]
