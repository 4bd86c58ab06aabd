"""The course's own machinery, run by ``course.py``; no notebook imports it.

- :mod:`tooling.book`: execute notebooks in fresh kernels (offline, under the network guard) and
  write the book (HTML with outputs) to ``build/book/``.
- :mod:`tooling.make_exercises`: generate the fill-in workbooks in ``exercises/`` from ``solutions/``.
- :mod:`tooling.nbgrader_source`: write an nbgrader source course from ``solutions/`` (``course.py nbgrader``).
- :mod:`tooling.progress`: run learners' workbooks and report which exercises pass (``course.py progress``).
- :mod:`tooling.timings`: time every notebook; write ``docs/timings.md`` and the README's table.
- :mod:`tooling.workshop`: the generated parts of ``docs/WORKSHOP.md``.
- :mod:`tooling.preflight`: check a machine in seconds before a workshop.
- :mod:`tooling.colab`: the Colab set-up cell at the top of every notebook.
- :mod:`tooling.fragility`: re-run the claim tests on weights nudged by float32 rounding.
- :mod:`tooling.network_guard`: record and refuse every connection outside loopback.
"""
