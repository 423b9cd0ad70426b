"""A private PostgreSQL cluster for tests that stop and start the database under running
processes (the machine's shared server on 5432 serves every other test and is never
restarted). Debian's ``initdb`` and ``pg_ctl``, trust authentication, a free port on loopback.

The cluster lives in a short folder of its own under the system's temporary folder, not in the
test's: a unix socket path must fit in 107 bytes, and when the tests run as root the server
runs as ``postgres`` (PostgreSQL refuses root), which cannot enter pytest's root-only folders.
:meth:`PostgresServer.remove` copies the server's log into the test's folder before deleting
the cluster, for a post-mortem.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from vigil.net import free_local_port


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's programs, if any."""
    found = [
        path
        for path in Path("/usr/lib/postgresql").glob("*/bin")
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else None


class PostgresServer:
    def __init__(self, bin_dir: Path, keep: Path) -> None:
        self.bin_dir = bin_dir
        #: The test's folder, where the server's log is copied on removal.
        self.keep = keep
        self.port = free_local_port()
        # As root the server runs as the system's postgres account; otherwise as us.
        self._account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "postgres.log"
        self.sockets.mkdir()
        if self._account is not None:
            for path in (self.root, self.sockets):
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        settings = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.sockets}'",
            # Durability against the machine crashing is not under test (a server stop is:
            # committed WAL still reaches the OS before the commit returns), and a 2-core CI
            # machine has better things to do than wait on fsync.
            "fsync = off",
            "full_page_writes = off",
        ]
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n".join(settings) + "\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: sessions are ended and rolled back, then a clean shutdown; ``immediate``:
        every process quits at once, as in a crash, and the next start recovers from the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        status = subprocess.run(
            self._command("pg_ctl", "-D", str(self.data), "status"),
            capture_output=True,
            cwd=self.root,
            check=False,
        )
        return status.returncode == 0

    def remove(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        if self.log.exists():
            shutil.copy(self.log, self.keep / "postgres.log")
        shutil.rmtree(self.root, ignore_errors=True)

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        if self._account is not None:
            command = ["runuser", "-u", self._account.pw_name, "--", *command]
        return command

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            self._command(program, *args), capture_output=True, cwd=self.root, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({done.returncode}): "
                f"{done.stderr.decode(errors='replace')}\n{log}"
            )


def start_postgres(keep: Path, in_ci: bool) -> PostgresServer:
    """A fresh cluster, started: skipped locally without PostgreSQL's programs (or, as root,
    without a postgres account to run them as), failing in CI."""
    bin_dir = _bin_dir()
    missing = None
    if bin_dir is None:
        missing = "PostgreSQL's initdb and pg_ctl are not installed (/usr/lib/postgresql/*/bin)"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing = "running as root and there is no postgres account to run a cluster as"
    if missing is not None or bin_dir is None:
        if in_ci:
            pytest.fail(f"{missing} (scripts/ensure-postgres.sh installs PostgreSQL)")
        pytest.skip(str(missing))
    server = PostgresServer(bin_dir, keep)
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
