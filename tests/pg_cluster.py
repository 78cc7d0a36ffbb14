"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, a free local port.

Standard library only, so CI can run it before the virtualenv exists:

    python3 tests/pg_cluster.py start DIR   # prints the URL: postgresql://custseg:PASSWORD@127.0.0.1:PORT/custseg
    python3 tests/pg_cluster.py stop DIR    # stops the server and removes DIR

The server runs as a non-root user (PostgreSQL refuses to run as root): the current user, or, when
started as root, `postgres` (Debian's package creates it) or else `nobody`. It listens on 127.0.0.1
only, on a port nobody else holds, with a Unix socket inside DIR; TCP logins need a password
(scram-sha-256), so the tests can check what a wrong password does. The login role `custseg` owns
the database `custseg` and may create roles (the privilege tests create a read-only one).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DB_USER = "custseg"
DB_NAME = "custseg"


def find_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres (Debian keeps them off PATH), or None."""
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)  # may be a symlink into Debian's directory
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    candidates += [Path(p).parent for p in found]
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "psql")):
            return bindir
    return None


def _server_user() -> str | None:
    """Who runs the server: None (the current user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], user: str | None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, user=user, check=True, capture_output=True, text=True, cwd="/", env={**os.environ, "LC_ALL": "C"}, **kw
    )


def start(directory: str | os.PathLike) -> str:
    """Create and start a cluster in `directory` (created if missing); return its URL."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("initdb not found (install PostgreSQL, e.g. apt-get install postgresql)")
    user = _server_user()
    root = Path(directory).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    data = root / "data"
    super_pw = secrets.token_urlsafe(18)
    user_pw = secrets.token_urlsafe(18)
    pwfile = root / "superuser.pw"
    pwfile.write_text(super_pw + "\n")
    if user is not None:
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    _run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"],
        user,
    )
    pwfile.unlink()
    last_error = None
    for _attempt in range(5):  # the free port may be taken between choosing and binding it
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                  "-o", opts, "start"], user)
            break
        except subprocess.CalledProcessError as exc:
            last_error = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else exc.stderr
    else:
        raise RuntimeError(f"the PostgreSQL server did not start: {last_error}")
    (root / "port").write_text(str(port))
    psql = [str(bindir / "psql"), "-h", str(root), "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-q"]
    # The password goes in through stdin, never on a command line that `ps` shows.
    sql = (
        f"CREATE ROLE {DB_USER} LOGIN CREATEROLE PASSWORD '{user_pw}';\n"
        f"CREATE DATABASE {DB_NAME} OWNER {DB_USER};\n"
    )
    _run(psql, user, input=sql)
    url = f"postgresql://{DB_USER}:{user_pw}@127.0.0.1:{port}/{DB_NAME}"
    (root / "url").write_text(url + "\n")
    os.chmod(root / "url", 0o600)
    return url


def stop(directory: str | os.PathLike) -> None:
    """Stop the cluster in `directory` (if running) and remove the directory."""
    root = Path(directory).resolve()
    bindir = find_bindir()
    data = root / "data"
    if bindir is not None and (data / "postmaster.pid").exists():
        try:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"],
                 _server_user())
        except subprocess.CalledProcessError:
            pass
    for _ in range(20):
        if not (data / "postmaster.pid").exists():
            break
        time.sleep(0.25)
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print(f"usage: {argv[0]} start|stop DIR", file=sys.stderr)
        return 2
    if argv[1] == "start":
        try:
            print(start(argv[2]))
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or ""
            print(f"pg_cluster: {exc} {detail}".strip(), file=sys.stderr)
            stop(argv[2])
            return 1
    else:
        stop(argv[2])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
