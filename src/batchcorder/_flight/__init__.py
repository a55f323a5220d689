"""The Arrow Flight server behind :mod:`batchcorder.flight`, one module a job.

- :mod:`.service`: the Flight methods; one reader per ``do_get``.
- :mod:`.wire`: tickets, descriptors and schemas on the wire.
- :mod:`.auth`: bearer tokens and basic auth, checked on every call.
- :mod:`.errors`: what a failing call tells the client.
- :mod:`.listen`: where and how the server listens (loopback by default, TLS).
"""
