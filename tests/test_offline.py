"""Nothing on the default path touches the network: the socket-level guard, and circuitsvis without its probe.

The guard itself (``tooling/network_guard.py``) runs every notebook kernel of the test command and the
book; here it is checked in this process: what it blocks, what it lets through, and that circuitsvis
views, once ``helpers`` is imported, inline their bundle without probing google.com.
"""
from __future__ import annotations

import socket
import urllib.request

import pytest
import torch

import helpers  # noqa: F401 - importing helpers is what switches circuitsvis to its bundle
from tooling import network_guard


def test_guard_blocks_lookups_and_outside_connections_and_logs_them(tmp_path) -> None:
    with network_guard.blocking(tmp_path / "log") as log:
        with pytest.raises(OSError):
            urllib.request.urlopen("http://example.org", timeout=1)
        with pytest.raises(OSError):
            socket.create_connection(("10.9.8.7", 80), timeout=1)
        with pytest.raises(OSError):
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53))
        with pytest.raises(OSError):
            socket.gethostbyname("example.org")
        assert socket.getaddrinfo("localhost", 80) and socket.getaddrinfo("127.0.0.1", 80)
        with socket.socket() as server:                      # loopback is allowed: the kernel's own traffic
            server.bind(("127.0.0.1", 0))
            server.listen()
            socket.create_connection(server.getsockname(), timeout=1).close()
    calls = [(a["call"], a["target"]) for a in network_guard.read_log(log)]
    assert calls == [("socket.getaddrinfo", "'example.org'"), ("socket.connect", "('10.9.8.7', 80)"),
                     ("socket.sendto", "('8.8.8.8', 53)"), ("socket.gethostbyname", "'example.org'")]
    assert not network_guard.installed()
    assert socket.socket.connect is not None and socket.getaddrinfo.__module__ == "socket"     # put back


def test_circuitsvis_view_inlines_its_bundle_without_a_probe(tmp_path) -> None:
    import circuitsvis as cv

    with network_guard.blocking(tmp_path / "log") as log:
        html = cv.attention.attention_heads(tokens=["a", "b"], attention=torch.ones(1, 2, 2) / 2)._repr_html_()
    assert "CircuitsVis.render" in html and "unpkg.com" not in html
    assert network_guard.read_log(log) == []


def test_circuitsvis_probes_google_without_helpers(tmp_path, monkeypatch) -> None:
    """The test above can fail: circuitsvis's own ``internet_on`` resolves google.com."""
    import circuitsvis as cv
    from circuitsvis.utils import render

    from helpers import offline

    monkeypatch.setattr(render, "internet_on", offline.circuitsvis_probe)    # circuitsvis as shipped
    with network_guard.blocking(tmp_path / "log") as log:
        cv.attention.attention_heads(tokens=["a", "b"], attention=torch.ones(1, 2, 2) / 2)._repr_html_()
    assert ("socket.getaddrinfo", "'google.com'") in [(a["call"], a["target"]) for a in network_guard.read_log(log)]
