"""Keep the libraries the lessons use off the network, whatever the machine can reach.

circuitsvis decides, each time a view is shown, whether to inline the JavaScript bundle it ships or to
import it from unpkg.com, by trying to open http://google.com (``circuitsvis.utils.render.internet_on``).
That probe is a connection on the default path; online, the view then depends on a CDN, so a saved
notebook shows nothing when it is opened offline later; and where DNS hangs, the cell stalls for the
probe's timeout. :func:`use_bundled_circuitsvis` (run when ``helpers`` is imported) makes every view
inline the shipped bundle, with no probe.
"""
from __future__ import annotations

__all__ = ["use_bundled_circuitsvis"]


circuitsvis_probe = None     # circuitsvis's own ``internet_on``, once replaced


def _offline() -> bool:
    return False


def use_bundled_circuitsvis() -> None:
    """Make every circuitsvis view carry circuitsvis's own JavaScript bundle, without asking the internet."""
    from circuitsvis.utils import render

    if render.internet_on is not _offline:
        global circuitsvis_probe
        circuitsvis_probe = render.internet_on      # kept, so that a test can show what the probe does
        render.internet_on = _offline
