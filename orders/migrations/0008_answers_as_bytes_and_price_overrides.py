"""An idempotent answer is kept as the bytes that were sent (jsonb reorders keys, so a replay from it was
equal but not identical); a person may accept a partner's price within the partner's limit."""

import json

from django.db import migrations, models


def answers_to_bytes(apps, schema_editor):
    IdempotencyKey = apps.get_model("orders", "IdempotencyKey")
    for key in IdempotencyKey.objects.exclude(response_body=None):
        key.response = json.dumps(key.response_body, separators=(",", ":")).encode()
        key.save(update_fields=["response"])


def answers_to_json(apps, schema_editor):
    IdempotencyKey = apps.get_model("orders", "IdempotencyKey")
    for key in IdempotencyKey.objects.exclude(response=None):
        key.response_body = json.loads(bytes(key.response))
        key.save(update_fields=["response_body"])


class Migration(migrations.Migration):
    dependencies = [("orders", "0007_shipment_line_index_covered")]

    operations = [
        migrations.AddField(
            model_name="idempotencykey",
            name="response",
            field=models.BinaryField(help_text="The answer's body, byte for byte as it was sent.", null=True),
        ),
        migrations.RunPython(answers_to_bytes, answers_to_json),
        migrations.RemoveField(model_name="idempotencykey", name="response_body"),
        migrations.AddField(
            model_name="orderline",
            name="price_accepted",
            field=models.BooleanField(
                default=False, help_text="A person accepted the partner's unit price although it is off the catalogue's."
            ),
        ),
        migrations.AddField(
            model_name="partner",
            name="price_override_percent",
            field=models.DecimalField(
                decimal_places=2,
                default=25,
                help_text="A person may accept a unit price up to this far from the catalogue price; beyond it, the line goes.",
                max_digits=5,
            ),
        ),
    ]
