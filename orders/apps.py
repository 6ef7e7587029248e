from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from exceptions import filters, hooks
        from inventory import listeners

        from . import actions, panels, search
        from .services import backorders, resolutions

        hooks.connect(
            hooks.OrderListener(
                blocking_raised=resolutions.exception_blocking_raised_locked,
                closed=resolutions.exception_closed_locked,
                problem_left=resolutions.problem_left,
            )
        )
        actions.register_actions()
        panels.register_panels()
        listeners.on_stock_raised(backorders.on_stock_raised)
        filters.search_orders_with(search.order_ids_matching)
        filters.site_condition_with(search.exception_of_order_shipping_from)
