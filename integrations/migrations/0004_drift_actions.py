"""inventory_drift's own fixes: take the WMS's count, keep ours, or ask the WMS to count again."""

from django.db import migrations

DRIFT_ACTIONS = ["accept_count", "keep_ours", "request_recount"]


def offer(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code="inventory_drift"):
        exception_type.allowed_actions = [
            *DRIFT_ACTIONS,
            *(code for code in exception_type.allowed_actions if code not in DRIFT_ACTIONS),
        ]
        exception_type.save(update_fields=["allowed_actions"])


def withdraw(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code="inventory_drift"):
        exception_type.allowed_actions = [code for code in exception_type.allowed_actions if code not in DRIFT_ACTIONS]
        exception_type.save(update_fields=["allowed_actions"])


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0003_availability_published"),
        ("exceptions", "0007_accept_price_action"),
    ]

    operations = [migrations.RunPython(offer, withdraw)]
