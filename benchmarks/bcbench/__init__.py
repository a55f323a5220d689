"""Benchmark harness for batchcorder.

The harness is split into one job per module:

``data``
    deterministic numpy-generated record batches;
``timing``
    interleaved baseline/subject timing with warm-up and medians;
``impl``
    the small amount of code that differs between our ``batchcorder`` and
    PyPI's ``batchcorder`` 0.1.3 (which shares the import name);
``memwatch``
    anonymous-memory sampling of a child process;
``machine``
    the machine description printed above every table;
``reference``
    locating or creating the reference virtualenv;
``report``
    targets, PASS/MISS and the markdown table;
``document``
    the whole report of a run (also re-rendered from ``--json``) and
    ``--write-docs``;
``worker``
    runs one case group in a fresh process and writes its raw figures;
``cases``
    the case groups themselves.
"""

from __future__ import annotations
