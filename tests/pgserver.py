"""A private PostgreSQL server for the tests: initdb into a temporary directory, listen on a
Unix socket only, one fresh database per test. Uses Debian's PostgreSQL binaries
(.ci/run installs the `postgresql` package)."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile

_counter = itertools.count(1)


def find_bin_dir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in candidates:
        if os.path.exists(os.path.join(d, "pg_ctl")) and os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


class PgServer:
    def __init__(self, bin_dir: str):
        self.bin_dir = bin_dir
        self.root = tempfile.mkdtemp(prefix="complaintflow-pg-")
        self.data = os.path.join(self.root, "data")
        self.socket_dir = self.root
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args):
        subprocess.run(self.as_user + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self):
        self._run(os.path.join(self.bin_dir, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C.UTF-8")
        options = f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir} -c fsync=off"
        self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-o", options, "-w", "-l",
                  os.path.join(self.root, "log"), "start")
        return self

    def stop(self):
        try:
            self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@/{dbname}?host={self.socket_dir}"

    def new_database(self) -> str:
        import psycopg
        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(host=self.socket_dir, user="postgres", dbname="postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
