"""A private PostgreSQL 16 + pgvector server for the tests (the ``pgserver`` package).

One server per test session, listening on a unix socket only (no TCP port) in a temporary
folder, stopped and deleted at the end. Each test gets a database of its own
(:meth:`PostgresServer.new_database`), so no test sees another's rows.
"""

from __future__ import annotations

import itertools
import threading
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

START_TIMEOUT = 60.0  # seconds for initdb + start (about 2 s on an idle machine)


def database_of(url: str) -> str:
    """The database name of a URL (``postgresql://user@/NAME?host=/socket/dir``)."""
    return urlsplit(url).path.lstrip("/")


class PostgresServer:
    """A started ``pgserver`` instance and the databases made on it."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            import pgserver

        box: dict[str, Any] = {}

        def start() -> None:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
                    box["server"] = pgserver.get_server(folder, cleanup_mode="delete")
            except BaseException as err:  # handed to the waiting thread
                box["error"] = err

        starter = threading.Thread(target=start, daemon=True, name="pgserver-start")
        starter.start()
        starter.join(START_TIMEOUT)
        if starter.is_alive():
            pytest.fail(f"pgserver did not start PostgreSQL within {START_TIMEOUT:g} s in {folder}")
        if "error" in box:
            raise box["error"]
        self._server = box["server"]
        self.admin_url: str = self._server.get_uri()
        with self.admin() as conn:  # a throwaway server: no fsync (the shutdown took 17 s)
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
            conn.execute("SELECT pg_reload_conf()")
        self._names = itertools.count()
        self._databases: list[str] = []

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """A URL for ``database``, as the server's own user unless ``user`` is given."""
        url = self._server.get_uri(database)
        if user is None:
            return url
        login = f"{user}:{password}" if password is not None else user
        return url.replace("postgres:@", f"{login}@", 1)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)

    def new_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"test_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._databases.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = database_of(url)
        with self.admin() as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))

    def password_user(self, user: str, password: str) -> None:
        """A login role that must give ``password`` (the server trusts every other login):
        a ``scram-sha-256`` line for it goes first in ``pg_hba.conf``, then the server reloads."""
        with self.admin() as conn:
            role = sql.Identifier(user)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, password))
            conn.execute(sql.SQL("GRANT ALL ON DATABASE postgres TO {}").format(role))
            hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
            hba.write_text(f"local all {user} scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
        # the reload is a signal the server handles soon after: wait until it asks (bounded)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url("postgres", user, "not-" + password)).close()
            except psycopg.OperationalError:
                return
            time.sleep(0.05)
        pytest.fail(f"the server still lets {user} in without a password after 10 s")

    def stop(self) -> None:
        self._server.cleanup()
