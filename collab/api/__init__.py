"""The JSON API under ``/api/v1``: rooms, members, docs, invites, tokens, users, audit.

``routes`` holds the one table of operations (routed and documented from it); ``parsing`` reads
requests, ``access`` decides who may do what (and audits it), ``handler`` turns every exception
into its JSON error. This ``__init__`` imports nothing, so submodules never form a cycle with it.
"""
