"""Operations on a stored database: backup, restore, verify, compact, stats (``collab.cli.ops``).

None of them deserialises a stored doc in the calling process beyond the bounded scanner
(``collab.wire.scan_update`` + ``collab.wire.DocIndex``, both iterative with explicit
caps): never ``str()``, ``to_py()`` or ``to_json()`` on a pycrdt type (deep trees crash yrs,
YJS-WIRE.md §4). Compaction, which must apply updates to a real Doc, does it in a child
process per document, after the bounded scan has accepted the document.
"""
