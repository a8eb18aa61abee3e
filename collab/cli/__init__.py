"""The ``collab`` command (``python -m collab``, the ``collab`` script): a thin click layer.

One module per command group, each defining its commands and nothing else; this module is the
one place that puts them under ``main``. The options they share (``--config``, ``--store``,
one option per setting) are defined once in ``collab.cli.options``.

    serve, migrate                              collab.cli.serve
    config check                                collab.cli.config
    backup, restore, verify, compact, stats     collab.cli.ops
    user, token, audit, purge                   collab.cli.admin
    files gc                                    collab.cli.files
    search reindex                              collab.cli.search
"""

from __future__ import annotations

import click

from collab.cli.admin import audit, purge, token, user
from collab.cli.config import config_group
from collab.cli.files import files_group
from collab.cli.ops import backup, compact, restore, stats, verify
from collab.cli.search import search_group
from collab.cli.serve import migrate, serve


@click.group()
@click.version_option(package_name="collab")
def main() -> None:
    """collab: rooms of Yjs documents, synced over WebSocket and kept durable."""


for _command in (
    serve,
    migrate,
    user,
    token,
    audit,
    purge,
    files_group,
    config_group,
    backup,
    restore,
    verify,
    compact,
    stats,
    search_group,
):
    main.add_command(_command)

__all__ = ["main"]
