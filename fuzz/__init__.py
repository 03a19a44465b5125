"""poolkit's fuzz harness (issue 9, item 6): random and adversarial calls of the whole public
API, each case in a worker subprocess, judged by :mod:`fuzz.oracle` and run by
:mod:`fuzz.runner`. Not shipped with poolkit; run from the repository's root::

    python -m fuzz --seconds 1800 --workers 2 --report fuzz-report.json
    python -m fuzz --replay TARGET:SEED

Targets live in :mod:`fuzz.targets`, argument generators in :mod:`fuzz.gen`.
"""
