"""Started by every kernel the book builder runs (it puts this folder on PYTHONPATH): install the network guard.

See ``tooling/network_guard.py``, loaded here by its path so that this start-up imports nothing else
(not the ``helpers`` package, which would load torch). Does nothing unless ``COURSE_NETWORK_GUARD_LOG``
names the log to write.
"""
import os

if os.environ.get("COURSE_NETWORK_GUARD_LOG"):
    import importlib.util

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "network_guard.py")
    _spec = importlib.util.spec_from_file_location("tooling.network_guard", _path)
    _guard = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_guard)
    _guard.install(os.environ["COURSE_NETWORK_GUARD_LOG"])
    del _path, _spec, _guard
