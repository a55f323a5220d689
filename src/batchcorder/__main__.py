"""``python -m batchcorder``: the ``batchcorder`` command."""

from __future__ import annotations

import sys

from batchcorder._cli.main import main

if __name__ == "__main__":
    sys.exit(main())
