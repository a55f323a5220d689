"""The ``batchcorder`` command line: ``batchcorder query`` and ``batchcorder demo``.

The entry point is :func:`batchcorder._cli.main.main`; each command and
concern lives in its own module (``sources``, ``sizes``, ``output``,
``engines``, ``progress``, ``interrupts``, ``caching``, ``query``,
``synthetic``, ``demo``).
"""

from __future__ import annotations
