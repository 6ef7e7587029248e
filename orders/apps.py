from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from exceptions import hooks

        from . import actions, allocation, services

        hooks.on_blocking_raised(services.hold_for_blocking_exception)
        hooks.on_closed(services.release_hold_when_clear)
        hooks.on_closed(allocation.route_when_hold_lifts)  # after the hold lifted
        actions.register_actions()
