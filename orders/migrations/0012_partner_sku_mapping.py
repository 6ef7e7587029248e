"""Partners' own SKU codes mapped to ours, and the fixes of unknown_sku and duplicate_order that use them: map the
SKU (first), or, for a duplicate, cancel one of the two orders or keep both."""

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

OFFERED_FIRST = {"unknown_sku": ["map_sku"], "duplicate_order": ["cancel_duplicate", "keep_both"]}


def offer(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code__in=OFFERED_FIRST):
        codes = OFFERED_FIRST[exception_type.code]
        exception_type.allowed_actions = [*codes, *(c for c in exception_type.allowed_actions if c not in codes)]
        exception_type.save(update_fields=["allowed_actions"])


def withdraw(apps, schema_editor):
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    for exception_type in ExceptionType.objects.filter(code__in=OFFERED_FIRST):
        codes = OFFERED_FIRST[exception_type.code]
        exception_type.allowed_actions = [c for c in exception_type.allowed_actions if c not in codes]
        exception_type.save(update_fields=["allowed_actions"])


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0006_planned_at_and_fillfactor"),
        ("orders", "0011_shipment_shipped_at_index"),
        ("exceptions", "0008_queue_views_and_open_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PartnerSkuMapping",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "partner_sku_code",
                    models.CharField(help_text="The code as the partner sends it; matched ignoring case.", max_length=64),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "partner",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sku_mappings",
                        to="orders.partner",
                    ),
                ),
                (
                    "sku",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="partner_mappings", to="inventory.sku"
                    ),
                ),
            ],
            options={
                "verbose_name": "partner SKU mapping",
                "ordering": ["partner__code", "partner_sku_code"],
                "constraints": [
                    models.UniqueConstraint(
                        models.F("partner"),
                        django.db.models.functions.text.Upper("partner_sku_code"),
                        name="partner_sku_mapping_unique_code",
                        violation_error_message="This partner already has a mapping for that code (codes match ignoring case).",
                    )
                ],
            },
        ),
        migrations.RunPython(offer, withdraw),
    ]
