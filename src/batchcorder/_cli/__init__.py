"""The ``batchcorder`` command line: ``batchcorder query`` and ``batchcorder demo``.

The entry point is :func:`batchcorder._cli.main.main`; each command and
concern lives in its own module: ``query`` and ``demo`` (the subcommands),
``arguments`` (what they share in parsing), ``sources`` (opening SOURCE),
``caching`` (the cache from the options), ``engines`` and ``statements``
(running SQL), ``output`` and ``render`` (writing results), ``progress``,
``interrupts`` (Ctrl-C and SIGTERM), ``sizes`` and ``synthetic`` (the demo's
data).
"""

from __future__ import annotations
