from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from orders import subscribers

        from . import actions, panels
        from .services import outbox

        subscribers.subscribe(outbox.on_order_event)
        actions.register_actions()
        panels.register_panels()
