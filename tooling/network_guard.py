"""A socket-level guard: in this process, only loopback connections are allowed, and no host name is resolved.

The course promises that nothing on its default path opens a connection outside the loopback range,
not even a library's "am I online?" probe. The book builder (and so ``python3 course.py test`` and
``python3 course.py book``) starts every notebook's kernel with this guard installed, through the
``sitecustomize.py`` in ``tooling/network_guard_site/``; each attempt is written to a log that the
run then reads::

    attempts = network_guard.read_log(log)      # [] when the notebook stayed offline

Blocked, and logged:
- connecting a socket (``connect``, ``connect_ex``, ``sendto``) to any address outside 127.0.0.0/8 and ::1;
- resolving a host name (``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``,
  ``getnameinfo``) other than ``localhost`` or a numeric address.
A blocked call raises ``OSError`` (``socket.gaierror`` for a lookup), as it would on a machine with no
network, so a library that handles being offline goes on.
"""
from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

LOG_ENV = "COURSE_NETWORK_GUARD_LOG"
SITE_DIR = Path(__file__).resolve().parent / "network_guard_site"   # holds the kernel's sitecustomize.py

__all__ = ["LOG_ENV", "SITE_DIR", "install", "uninstall", "installed", "blocking", "read_log", "kernel_env"]

_original: dict[str, object] = {}


def _is_local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _is_numeric(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None:
        return True                      # getaddrinfo(None, port): the wildcard address, no lookup
    try:
        ipaddress.ip_address(str(host).split("%")[0])
        return True
    except ValueError:
        return False


_MACHINERY = ("/IPython/", "/ipykernel/", "/tornado/", "/asyncio/", "/traitlets/", "/zmq/", "/jupyter_client/",
              "runpy.py", "threading.py", "selectors.py", "network_guard.py", "sitecustomize.py", "/_pytest/",
              "/pluggy/")


def _record(log: Path, call: str, target: object) -> None:
    """Append one blocked attempt, with the outermost frames that are not the kernel's or pytest's own."""
    frames = [f for f in traceback.extract_stack()[:-2] if not any(part in f.filename for part in _MACHINERY)]
    stack = [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames[:12]]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"call": call, "target": repr(target), "stack": stack}) + "\n")


def install(log: str | Path) -> None:
    """Guard every socket of this process from now on; write each blocked attempt to ``log`` (JSON lines)."""
    if _original:
        return
    log = Path(log)
    cls = socket.socket

    def blocked(call: str, target: object, lookup: bool = False) -> OSError:
        _record(log, call, target)
        if lookup:
            return socket.gaierror(socket.EAI_NONAME,
                                   f"host name lookup blocked by the course's network guard: {target!r}")
        return OSError(errno.ENETUNREACH, f"connection blocked by the course's network guard: {target!r}")

    def allowed(sock: socket.socket, address: object) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True                   # Unix sockets and the like never leave the machine
        return isinstance(address, tuple) and _is_local(address[0])

    for method in ("connect", "connect_ex"):
        original = getattr(cls, method)
        _original[method] = original

        def guarded(self, address, _original=original, _method=method):
            if not allowed(self, address):
                raise blocked(f"socket.{_method}", address)
            return _original(self, address)

        setattr(cls, method, guarded)

    original_sendto = cls.sendto
    _original["sendto"] = original_sendto

    def sendto(self, data, *args):
        address = args[-1]
        if not allowed(self, address):
            raise blocked("socket.sendto", address)
        return original_sendto(self, data, *args)

    cls.sendto = sendto

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
        original = getattr(socket, name)
        _original[name] = original

        def lookup(*args, _original=original, _name=name, **kwargs):
            host = args[0] if args else kwargs.get("host")
            if _name == "getnameinfo":
                host = host[0] if isinstance(host, tuple) else host
            if not (_is_local(host) or (_is_numeric(host) and _name in ("getaddrinfo", "gethostbyname"))):
                raise blocked(f"socket.{_name}", host, lookup=True)
            return _original(*args, **kwargs)

        setattr(socket, name, lookup)


def uninstall() -> None:
    """Put back the socket functions that :func:`install` replaced."""
    for name, original in _original.items():
        setattr(socket.socket if name in ("connect", "connect_ex", "sendto") else socket, name, original)
    _original.clear()


@contextlib.contextmanager
def blocking(log: str | Path) -> Iterator[Path]:
    """The guard for the duration of a ``with`` block, in this process (for tests)::

        with network_guard.blocking(tmp_path / "log") as log:
            load_replacement_model()
        assert network_guard.read_log(log) == []
    """
    if _original:
        raise RuntimeError("the network guard is already installed in this process")
    install(log)
    try:
        yield Path(log)
    finally:
        uninstall()


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return bool(_original)


def read_log(log: str | Path) -> list[dict]:
    """The blocked attempts recorded in ``log`` (each ``{"call", "target", "stack"}``); [] if there were none."""
    path = Path(log)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def kernel_env(log: str | Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a kernel that starts with the guard installed, logging to ``log``."""
    env = dict(os.environ if env is None else env)
    paths = [str(SITE_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env[LOG_ENV] = str(log)
    return env
