"""Everything persistent that is not a Yjs document: users, sessions, rooms, members, tokens,
audit. One small Protocol (``MetaStore``), a memory twin and a SQLite implementation, chosen by
the same store URL as the documents (``open_meta_store``)."""
