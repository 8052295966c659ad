"""The `collections-hub` command: the embedded one-command stack and operator tools.

It is not a service: it starts and supervises the services (and, for the embedded default, nats-server
and the nx-27017 MongoDB-protocol server) as child processes, the way a laptop or a test needs them.
"""
