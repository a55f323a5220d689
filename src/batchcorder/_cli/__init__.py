"""The ``batchcorder`` command line: ``batchcorder query``, ``demo`` and ``serve``.

The entry point is :func:`batchcorder._cli.main.main`. ``arguments`` parses
(it imports no engine, so ``--help`` is quick); ``query``, ``demo`` and
``serve`` are the subcommands; ``sources`` opens SOURCE, ``caching`` makes and
fills the cache, ``engines`` runs SQL, ``output`` writes results (one
rendering for every engine), ``progress`` draws the bar, ``interrupts``
handles Ctrl-C and SIGTERM, ``sizes`` and ``synthetic`` serve the options and
the demo's data.
"""

from __future__ import annotations
