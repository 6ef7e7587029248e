"""Offer the routing actions on the exception types they resolve."""

from django.db import migrations

ADDED = {
    "out_of_stock": ["reallocate", "substitute_sku"],
    "short_pick": ["reallocate"],
    "split_approval_required": ["approve_split", "reject_split", "cancel_line_ship_rest", "reallocate"],
    "stock_discrepancy": ["reallocate"],
}


def offer(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for code, codes in ADDED.items():
        exception_type = ExceptionType.objects.filter(code=code).first()
        if exception_type:
            exception_type.allowed_actions = [*exception_type.allowed_actions, *(c for c in codes if c not in exception_type.allowed_actions)]
            exception_type.save(update_fields=["allowed_actions"])


def withdraw(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for code, codes in ADDED.items():
        exception_type = ExceptionType.objects.filter(code=code).first()
        if exception_type:
            exception_type.allowed_actions = [c for c in exception_type.allowed_actions if c not in codes]
            exception_type.save(update_fields=["allowed_actions"])


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0002_seed_types_queues_policies")]

    operations = [migrations.RunPython(offer, withdraw)]
