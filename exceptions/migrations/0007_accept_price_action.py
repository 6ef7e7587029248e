"""Offer the price override on the type it resolves, first: the type's own actions are offered in this order, and
releasing the hold fixes nothing while the price is still off."""

from django.db import migrations

ADDED = {"pricing_mismatch": ["accept_price", "cancel_line"]}


def offer(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for code, codes in ADDED.items():
        exception_type = ExceptionType.objects.filter(code=code).first()
        if exception_type:
            exception_type.allowed_actions = [
                *codes,
                *(c for c in exception_type.allowed_actions if c not in codes),
            ]
            exception_type.save(update_fields=["allowed_actions"])


def withdraw(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for code, codes in ADDED.items():
        exception_type = ExceptionType.objects.filter(code=code).first()
        if exception_type:
            exception_type.allowed_actions = [c for c in exception_type.allowed_actions if c not in codes]
            exception_type.save(update_fields=["allowed_actions"])


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0006_calendar_lives_in_core")]

    operations = [migrations.RunPython(offer, withdraw)]
