"""The ``batchcorder`` command line; its entry point is :func:`batchcorder._cli.main.main`."""
