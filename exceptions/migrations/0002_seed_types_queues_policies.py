"""The 18 exception types of DESIGN §4, the queues that own them, and an SLA policy per type and priority.

Operations admins tune all of it in the admin afterwards; this is the starting point.
"""

from django.db import migrations

QUEUES = [
    # slug, name, team, assignment
    ("intake", "Order intake", "coordinator", "manual"),
    ("stock", "Stock and allocation", "coordinator", "manual"),
    ("warehouse", "Warehouse floor", "coordinator", "least_loaded"),
    ("shipping", "Shipping and carriers", "coordinator", "manual"),
    ("customer-service", "Customer service", "customer_service", "round_robin"),
    ("finance", "Finance", "ops_admin", "manual"),
    ("integrations", "Integrations", "ops_admin", "manual"),
    ("escalations", "Escalations", "ops_admin", "manual"),
    ("triage", "Triage", "ops_admin", "manual"),
]

TYPES = [
    # code, name, stage, category, severity, blocking, queue, allowed actions beyond the generic ones
    ("duplicate_order", "Duplicate order", "intake", "business_rule", "high", True, "intake", ["release_hold", "cancel_order"]),
    ("invalid_address", "Invalid address", "intake", "business_rule", "medium", True, "customer-service", ["correct_address", "release_hold", "cancel_order"]),
    ("unknown_sku", "Unknown SKU", "intake", "business_rule", "high", True, "intake", ["cancel_line", "cancel_order"]),
    ("uom_mismatch", "Unit of measure mismatch", "intake", "business_rule", "medium", True, "intake", ["cancel_line", "cancel_order"]),
    ("pricing_mismatch", "Price differs from catalogue", "intake", "business_rule", "medium", True, "finance", ["release_hold", "cancel_order"]),
    ("credit_hold", "Credit hold", "financial", "business_rule", "high", True, "finance", ["release_hold", "cancel_order"]),
    ("address_change_after_release", "Address change after release", "warehouse", "business_rule", "high", False, "customer-service", ["cancel_order"]),
    ("out_of_stock", "Out of stock", "allocation", "physical", "medium", False, "stock", ["cancel_line", "cancel_order"]),
    ("split_approval_required", "Split shipment needs approval", "allocation", "business_rule", "low", False, "customer-service", []),
    ("short_pick", "Short pick", "warehouse", "physical", "high", False, "warehouse", ["cancel_line"]),
    ("damaged_item", "Damaged item", "warehouse", "physical", "medium", False, "warehouse", ["cancel_line"]),
    ("stock_discrepancy", "Stock discrepancy", "warehouse", "physical", "medium", False, "stock", []),
    ("label_failure", "Label failure", "shipping", "integration", "high", False, "shipping", []),
    ("carrier_service_invalid", "Carrier service invalid", "shipping", "business_rule", "medium", False, "shipping", []),
    ("delivery_failed", "Delivery failed", "shipping", "physical", "medium", False, "customer-service", []),
    ("shipment_not_invoiced", "Shipment not invoiced", "financial", "integration", "low", False, "finance", []),
    ("sync_failure", "Sync failure", "sync", "integration", "high", False, "integrations", []),
    ("inventory_drift", "Inventory drift", "sync", "integration", "medium", False, "stock", []),
]

# priority -> (first response minutes, resolve minutes)
SLA_MINUTES = {"P1": (15, 120), "P2": (30, 480), "P3": (120, 1440), "P4": (240, 2880)}

OFFICE_HOURS = {str(day): [["08:00", "18:00"]] for day in range(5)}


def seed(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Queue = apps.get_model("exceptions", "Queue")
    ExceptionType = apps.get_model("exceptions", "ExceptionType")
    SlaPolicy = apps.get_model("exceptions", "SlaPolicy")
    BusinessCalendar = apps.get_model("exceptions", "BusinessCalendar")

    queues = {}
    for slug, name, team, assignment in QUEUES:
        group, _ = Group.objects.get_or_create(name=team)
        queues[slug], _ = Queue.objects.get_or_create(slug=slug, defaults={"name": name, "team": group, "assignment": assignment})
    office, _ = BusinessCalendar.objects.get_or_create(
        name="Office hours (Amsterdam)", defaults={"timezone": "Europe/Amsterdam", "hours": OFFICE_HOURS}
    )
    for code, name, stage, category, severity, blocking, queue, allowed in TYPES:
        exception_type, _ = ExceptionType.objects.get_or_create(
            code=code,
            defaults={
                "name": name, "stage": stage, "category": category, "severity": severity, "blocking": blocking,
                "default_queue": queues[queue], "allowed_actions": allowed,
            },
        )
        for priority, (first, resolve) in SLA_MINUTES.items():
            SlaPolicy.objects.get_or_create(
                exception_type=exception_type, priority=priority,
                defaults={
                    "first_response_minutes": first, "resolve_minutes": resolve, "warning_percent": 75,
                    "pause_while_waiting": True, "escalation_queue": queues["escalations"],
                    "calendar": office if stage == "financial" else None,
                },
            )


def unseed(apps, schema_editor):
    apps.get_model("exceptions", "SlaPolicy").objects.all().delete()
    apps.get_model("exceptions", "ExceptionType").objects.filter(code__in=[t[0] for t in TYPES]).delete()
    apps.get_model("exceptions", "Queue").objects.filter(slug__in=[q[0] for q in QUEUES]).delete()
    apps.get_model("exceptions", "BusinessCalendar").objects.filter(name="Office hours (Amsterdam)").delete()


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0001_initial"), ("fulfillment", "0001_roles")]

    operations = [migrations.RunPython(seed, unseed)]
