"""A sync_failure's own fix is retry_sync: send the dead delivery again, or apply the failed event again."""

from django.db import migrations


def offer(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code="sync_failure"):
        if "retry_sync" not in exception_type.allowed_actions:
            exception_type.allowed_actions = ["retry_sync", *exception_type.allowed_actions]
            exception_type.save(update_fields=["allowed_actions"])


def withdraw(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code="sync_failure"):
        exception_type.allowed_actions = [code for code in exception_type.allowed_actions if code != "retry_sync"]
        exception_type.save(update_fields=["allowed_actions"])


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
        ("exceptions", "0002_seed_types_queues_policies"),
    ]

    operations = [migrations.RunPython(offer, withdraw)]
