from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FulfillmentConfig(AppConfig):
    name = "fulfillment"
    verbose_name = "Fulfillment portal"

    def ready(self) -> None:
        from core.roles import sync_role_permissions

        # Once per migrate, after every app has created its permissions.
        post_migrate.connect(sync_role_permissions, sender=self, dispatch_uid="fulfillment.sync_role_permissions")
