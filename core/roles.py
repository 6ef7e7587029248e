"""The three roles of DESIGN §6 as auth Groups, and the model permissions each holds.

The groups are created by a migration; their permissions are synced after every
migrate (permissions only exist once every app's models have been migrated).
Partners are not a role: they reach the API with a token and nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    COORDINATOR = "coordinator"
    CUSTOMER_SERVICE = "customer_service"
    OPS_ADMIN = "ops_admin"


# "app_label.codename"; "app_label.*" means every permission of the app.
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    # Coordinators work the floor's exceptions; they may hold and release, but not cancel what a customer bought.
    Role.COORDINATOR: [
        "inventory.view_location",
        "inventory.view_sku",
        "inventory.view_stocklevel",
        "inventory.view_stockmovement",
        "inventory.resolve_drift",
        "inventory.view_replenishmentsuggestion",
        "inventory.change_replenishmentsuggestion",
        "orders.view_order",
        "orders.view_shipment",
        "orders.view_orderevent",
        "orders.view_partner",
        "exceptions.view_fulfillmentexception",
        "exceptions.work_exception",
        "exceptions.assign_exception",
        "exceptions.dismiss_exception",
        "orders.release_hold",
        "orders.correct_address",
        "orders.reallocate_order",
        "orders.substitute_sku",
        "orders.view_routingdecision",
    ],
    # Customer service speaks for the customer: it may cancel orders and lines and fix addresses.
    Role.CUSTOMER_SERVICE: [
        "inventory.view_location",
        "inventory.view_sku",
        "inventory.view_stocklevel",
        "orders.view_order",
        "orders.view_shipment",
        "orders.view_orderevent",
        "orders.view_partner",
        "exceptions.view_fulfillmentexception",
        "exceptions.work_exception",
        "exceptions.assign_exception",
        "orders.release_hold",
        "orders.correct_address",
        "orders.cancel_order",
        "orders.cancel_line",
        "orders.approve_split",
        "orders.reallocate_order",
        "orders.substitute_sku",
        "orders.view_routingdecision",
    ],
    Role.OPS_ADMIN: ["inventory.*", "orders.*", "exceptions.*", "integrations.*"],
}


def sync_role_permissions(**kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for spec in wanted:
            app_label, codename = spec.split(".", 1)
            qs = Permission.objects.filter(content_type__app_label=app_label)
            permissions.extend(qs if codename == "*" else qs.filter(codename=codename))
        group.permissions.set(permissions)


def user_has_role(user, *roles: Role) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=[str(r) for r in roles]).exists()
