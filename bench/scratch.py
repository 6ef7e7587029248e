"""Scratch databases for the benchmarks: created on the PostgreSQL server DATABASE_URL names, dropped at the end.

The database DATABASE_URL names is never touched. A benchmark's main() does:

    exit_on_sigterm()
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    with ScratchServer(server_url) as server:
        server.create(name)
        setup_django_on(url_for_database(server_url, name))
        migrate_quietly()
        ...

Leaving the with block, normally, on error, on Ctrl-C (KeyboardInterrupt) or on SIGTERM (see
exit_on_sigterm), closes Django's connections and drops every database the server created.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sys
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
from psycopg import sql

POSTGRES_ENGINES = {"django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"}
# What the servers a benchmark starts run with: plain HTTP on loopback, without the HTTPS redirect and the
# secure-only cookies that DEBUG off turns on.
LOOPBACK_ENVIRONMENT = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def backend_cpu_ms(pid: int) -> float | None:
    """CPU time a PostgreSQL backend on this machine has used so far (schedstat counts nanoseconds); None if it is not here."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit: a plain kill would skip the cleanup in finally blocks and with statements."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def require_postgres(url: str) -> None:
    if not url:
        sys.exit("DATABASE_URL is not set; point it at a PostgreSQL server (see `cat /tmp/testenv` or scripts/test-services.sh).")
    if dj_database_url.parse(url)["ENGINE"] not in POSTGRES_ENGINES:
        sys.exit(
            "DATABASE_URL must be a PostgreSQL URL: this benchmark creates and drops its own database on that server. "
            f"Got: {urlsplit(url).scheme}://..."
        )


def url_for_database(url: str, name: str) -> str:
    """The same server, user and options, another database; in a scheme libpq understands."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, f"/{name}", parts.query, ""))


class ScratchServer:
    """CREATE and DROP DATABASE on the server of DATABASE_URL, through a maintenance connection.

    That connection is to another database than the scratch ones, so its own statements never count in their statistics.
    As a context manager it closes Django's connections, drops every database it created and closes itself on exit.
    """

    def __init__(self, server_url: str) -> None:
        try:
            self.admin = psycopg.connect(url_for_database(server_url, "postgres"), autocommit=True)
        except psycopg.OperationalError:
            # No access to the maintenance database: the configured one can issue CREATE DATABASE too; its data is not touched.
            self.admin = psycopg.connect(url_for_database(server_url, urlsplit(server_url).path.lstrip("/")), autocommit=True)
        self.created: list[str] = []

    def create(self, name: str, template: str | None = None) -> None:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.admin.execute(statement)
        self.created.append(name)

    def drop(self, name: str) -> None:
        self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in reversed(list(self.created)):
            self.drop(name)

    def version(self) -> str:
        return self.admin.execute("SHOW server_version").fetchone()[0].split()[0]

    def close(self) -> None:
        self.admin.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if "django.db" in sys.modules:
                close_django_connections()
            self.drop_all()
        finally:
            self.close()


def setup_django_on(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "fulfillment.settings"
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def migrate_quietly() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def point_django_at(database: str) -> None:
    """Django's default connection, closed, to reconnect to another database on the same server."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = database


def close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


def quoted(model) -> str:
    """The model's table name, quoted for SQL."""
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def insert_select(cursor, model, given: dict[str, str], source: str, params=()) -> int:
    """INSERT INTO the model's table SELECT the `given` SQL expressions (by column, without placeholders) FROM `source`;
    every other column gets its field's default, or NULL where it may.

    The model's defaults live in Python, not in the database: a column added with a default needs nothing here.
    """
    from django.db import connection

    columns, values, defaults = [], [], []
    for model_field in model._meta.concrete_fields:
        column = model_field.column
        if column in given:
            columns.append(column)
            values.append(given[column])
        elif model_field.primary_key or model_field.null:
            continue
        else:
            default = model_field.get_default()
            if default is None:
                raise ValueError(f"{model.__name__}.{model_field.name} has no default: give it a value")
            columns.append(column)
            values.append("%s")
            defaults.append(model_field.get_db_prep_save(default, connection))
    if unknown := set(given) - set(columns):
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    table = quoted(model)
    cursor.execute(f"INSERT INTO {table} ({names}) SELECT {', '.join(values)} FROM {source}", [*defaults, *params])
    return cursor.rowcount


@contextlib.contextmanager
def migrated_scratch_database(prefix: str, environment: dict[str, str], server_class=None):
    """The set-up every benchmark with a Django scratch database starts with: SIGTERM exits cleanly, DATABASE_URL
    must name a PostgreSQL server, `environment` is applied, and a database named `prefix` and the process id is
    created, Django is set up on it and migrated. Yields (server, server_url, database); the database is dropped
    on the way out, also on error."""
    exit_on_sigterm()  # so a plain kill, too, stops gunicorn and drops the scratch database
    server_url = os.environ.get("DATABASE_URL", "")
    require_postgres(server_url)
    os.environ.update(environment)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    database = f"{prefix}_{os.getpid()}"
    with (server_class or ScratchServer)(server_url) as server:
        server.create(database)
        setup_django_on(url_for_database(server_url, database))
        print(f"migrating and seeding scratch database {database}", file=sys.stderr, flush=True)
        migrate_quietly()
        yield server, server_url, database
