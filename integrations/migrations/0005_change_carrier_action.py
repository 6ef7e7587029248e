"""The fix of a failed label and of a carrier service the carrier refused: change the carrier or service, and have
the WMS print the label again."""

from django.db import migrations

LABEL_TYPES = ["label_failure", "carrier_service_invalid"]
ACTIONS = ["change_carrier"]


def offer(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code__in=LABEL_TYPES):
        exception_type.allowed_actions = [*ACTIONS, *(code for code in exception_type.allowed_actions if code not in ACTIONS)]
        exception_type.save(update_fields=["allowed_actions"])


def withdraw(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code__in=LABEL_TYPES):
        exception_type.allowed_actions = [code for code in exception_type.allowed_actions if code not in ACTIONS]
        exception_type.save(update_fields=["allowed_actions"])


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_drift_actions"),
        ("exceptions", "0008_queue_views_and_open_indexes"),
    ]

    operations = [migrations.RunPython(offer, withdraw)]
