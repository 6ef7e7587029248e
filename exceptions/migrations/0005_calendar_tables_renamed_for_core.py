"""The business calendar moves to the kernel (core), which orders' promised dates use too.

Step 1 of 3: rename its tables to the names core's models will have. The state stays here until
core.0001 takes the models over and exceptions.0006 lets them go; no row is copied.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0004_priority_labels")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable("businesscalendar", "core_businesscalendar"),
                migrations.AlterModelTable("holiday", "core_holiday"),
            ],
        ),
    ]
