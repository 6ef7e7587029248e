"""Order.changed_at, kept by the database: a change of the order row, an order event (every change of its
lines and shipments writes one) or a change of one of its exceptions stamps the order, in the transaction of
the change, once per transaction. GET /api/v1/orders/?updated_after= then reads one range of an index."""

import django.db.models.functions.datetime
from django.db import migrations, models

POSTGRESQL_TRIGGERS = """
CREATE FUNCTION order_stamp_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- now() is when the transaction began: stamped once, its later changes leave the stamp as it is.
    IF NEW.changed_at IS NULL OR NEW.changed_at < now() THEN
        NEW.changed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION order_touch_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orders_order SET changed_at = clock_timestamp() WHERE id = NEW.order_id AND changed_at < now();
    RETURN NULL;
END $$;
CREATE TRIGGER order_changed BEFORE UPDATE ON orders_order
    FOR EACH ROW EXECUTE FUNCTION order_stamp_changed();
CREATE TRIGGER order_event_changes_order AFTER INSERT ON orders_orderevent
    FOR EACH ROW EXECUTE FUNCTION order_touch_changed();
CREATE TRIGGER exception_changes_order AFTER INSERT OR UPDATE ON exceptions_fulfillmentexception
    FOR EACH ROW WHEN (NEW.order_id IS NOT NULL) EXECUTE FUNCTION order_touch_changed();
"""
POSTGRESQL_DROP = """
DROP TRIGGER IF EXISTS exception_changes_order ON exceptions_fulfillmentexception;
DROP TRIGGER IF EXISTS order_event_changes_order ON orders_orderevent;
DROP TRIGGER IF EXISTS order_changed ON orders_order;
DROP FUNCTION IF EXISTS order_touch_changed();
DROP FUNCTION IF EXISTS order_stamp_changed();
"""
# SQLite (make run): the same stamps, in the text form Django stores there; a trigger's own UPDATE of the order
# leaves changed_at changed, so order_changed does not fire for it again.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER order_changed AFTER UPDATE ON orders_order FOR EACH ROW WHEN NEW.changed_at IS OLD.changed_at "
    f"BEGIN UPDATE orders_order SET changed_at = {SQLITE_NOW} WHERE id = NEW.id; END",
    f"CREATE TRIGGER order_event_changes_order AFTER INSERT ON orders_orderevent FOR EACH ROW "
    f"BEGIN UPDATE orders_order SET changed_at = {SQLITE_NOW} WHERE id = NEW.order_id; END",
    f"CREATE TRIGGER exception_added_changes_order AFTER INSERT ON exceptions_fulfillmentexception FOR EACH ROW "
    f"WHEN NEW.order_id IS NOT NULL BEGIN UPDATE orders_order SET changed_at = {SQLITE_NOW} WHERE id = NEW.order_id; END",
    f"CREATE TRIGGER exception_changes_order AFTER UPDATE ON exceptions_fulfillmentexception FOR EACH ROW "
    f"WHEN NEW.order_id IS NOT NULL BEGIN UPDATE orders_order SET changed_at = {SQLITE_NOW} WHERE id = NEW.order_id; END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS exception_changes_order",
    "DROP TRIGGER IF EXISTS exception_added_changes_order",
    "DROP TRIGGER IF EXISTS order_event_changes_order",
    "DROP TRIGGER IF EXISTS order_changed",
]


def backfill(apps, schema_editor):
    """What the orders list compared before: the order row, its latest event and its latest exception change."""
    latest_event = "(SELECT max(at) FROM orders_orderevent e WHERE e.order_id = orders_order.id)"
    latest_exception = "(SELECT max(updated_at) FROM exceptions_fulfillmentexception x WHERE x.order_id = orders_order.id)"
    if schema_editor.connection.vendor == "postgresql":
        latest = f"GREATEST(updated_at, {latest_event}, {latest_exception})"  # GREATEST leaves out NULLs
    else:
        latest = f"max(updated_at, coalesce({latest_event}, updated_at), coalesce({latest_exception}, updated_at))"
    schema_editor.execute(f"UPDATE orders_order SET changed_at = {latest}", params=None)


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_TRIGGERS)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_DROP)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0014_admin_list_indexes"),
        ("exceptions", "0011_admin_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="changed_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["partner", "changed_at", "id"], name="order_partner_changed"),
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
