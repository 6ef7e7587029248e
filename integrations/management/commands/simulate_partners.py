import argparse
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from integrations.simulator import Options, Simulator

DEFAULTS = Options()


def share(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a share between 0 and 1.")
    return number


class Command(BaseCommand):
    help = (
        "Play a Shopify storefront (sim-shop), an ERP (sim-erp) and a WMS (sim-wms) on localhost: accept the outbox's "
        "deliveries and send the portal signed webhooks (new orders, picks, short picks, label failures, shipments, "
        "invoices, counts). Registers the three systems, or uses them as they are. Prints a summary every 10 s."
    )

    def add_arguments(self, parser):
        parser.add_argument("--portal-url", default=DEFAULTS.portal_url, help="Where the portal listens.")
        parser.add_argument("--host", default=DEFAULTS.host, help="Where the simulated systems listen.")
        parser.add_argument("--storefront-port", type=int, default=DEFAULTS.storefront_port)
        parser.add_argument("--erp-port", type=int, default=DEFAULTS.erp_port)
        parser.add_argument("--wms-port", type=int, default=DEFAULTS.wms_port)
        parser.add_argument(
            "--rate", type=float, default=DEFAULTS.rate, help="Webhooks per second: follow-ups first, new orders with the rest."
        )
        parser.add_argument(
            "--fault-rate", type=share, default=DEFAULTS.fault_rate, help="Share of deliveries answered 500 or left to time out."
        )
        parser.add_argument("--bad-address-rate", type=share, default=DEFAULTS.bad_address_rate)
        parser.add_argument("--short-pick-rate", type=share, default=DEFAULTS.short_pick_rate)
        parser.add_argument("--label-failure-rate", type=share, default=DEFAULTS.label_failure_rate)
        parser.add_argument(
            "--uninvoiced-rate", type=share, default=DEFAULTS.uninvoiced_rate, help="Share of shipments the ERP never invoices."
        )
        parser.add_argument(
            "--count-interval", type=float, default=DEFAULTS.count_interval, help="Seconds between stock counts; 0: none."
        )
        parser.add_argument(
            "--count-drift-rate",
            type=share,
            default=DEFAULTS.count_drift_rate,
            help="Share of SKUs the WMS has wrong: a few units off in its counts, 1-20 %% off in its GET /inventory.",
        )
        parser.add_argument("--duration", type=float, default=0, help="Seconds to run; 0: until Ctrl-C.")
        parser.add_argument("--seed", type=int, default=None, help="Make the choices repeatable.")

    def handle(self, *args, duration, **options):
        if options["rate"] < 0 or duration < 0 or options["count_interval"] < 0:
            raise CommandError("--rate, --duration and --count-interval cannot be negative.")
        simulator = Simulator(
            Options(
                portal_url=options["portal_url"],
                host=options["host"],
                storefront_port=options["storefront_port"],
                erp_port=options["erp_port"],
                wms_port=options["wms_port"],
                rate=options["rate"],
                fault_rate=options["fault_rate"],
                bad_address_rate=options["bad_address_rate"],
                short_pick_rate=options["short_pick_rate"],
                label_failure_rate=options["label_failure_rate"],
                uninvoiced_rate=options["uninvoiced_rate"],
                count_interval=options["count_interval"],
                count_drift_rate=options["count_drift_rate"],
                seed=options["seed"],
            )
        )
        # A TERM (scripts/run.sh stopping it) ends the run as Ctrl-C does, with the final summary.
        previous = signal.signal(signal.SIGTERM, lambda *_: simulator.stopping.set())
        # A line per request would bury the summary lines.
        logging.getLogger("httpx").setLevel(logging.WARNING)

        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            simulator.run(duration=duration, write=write)
        except OSError as error:
            raise CommandError(f"Cannot listen: {error}") from None
        except (DomainError, ValueError) as error:
            raise CommandError(str(getattr(error, "message", error))) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
