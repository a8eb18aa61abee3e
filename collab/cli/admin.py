"""Admin commands: ``collab user list|disable|enable|create-bot``, ``collab token create``,
``collab audit``, ``collab purge``. Each reads its settings like ``serve`` does (``--config`` /
``COLLAB_CONFIG``, then ``COLLAB_*``, then ``--store``) and opens that MetaStore directly (the
same database a running server uses; SQLite's WAL lets both write).

A user disabled here cannot authenticate again at once (every handshake and request checks),
and their sessions are revoked; sockets already open on a running server close with 4401 within
its ``user_recheck_interval`` (``collab.sync.disabled``). ``PATCH /api/v1/users/{id}`` closes
those on the node that answers it at once.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from collab.auth.tokens import BOT_ISSUER
from collab.cli.options import config_option, load_settings, store_option
from collab.db import StoreError
from collab.meta import AuditEvent, MetaStore, Role, User, open_meta_store
from collab.meta.purge import retention_cutoff
from collab.settings import Settings

T = TypeVar("T")


def _with_meta(settings: Settings, action: Callable[[MetaStore], Awaitable[T]]) -> T:
    async def run() -> T:
        meta = open_meta_store(settings.store)
        await meta.open()
        try:
            return await action(meta)
        finally:
            await meta.close()

    try:
        return asyncio.run(run())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


async def _resolve_user(meta: MetaStore, who: str) -> User:
    user = await meta.get_user(who)
    if user is None and "@" in who:
        user = await meta.find_user_by_verified_email(who)
    if user is None:
        raise click.ClickException(f"no user {who!r} (a user id, or a verified email)")
    return user


async def _audit(meta: MetaStore, action: str, **kw: Any) -> None:
    await meta.record(AuditEvent(at=time.time(), action=action, detail={"via": "cli"}, **kw))


@click.group()
def user() -> None:
    """List users, disable or enable them, create bot users."""


@user.command("list")
@store_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def user_list(store: str | None, config_file: str | None, as_json: bool) -> None:
    """Every user: id, login identity, name, verified email, state."""
    settings = load_settings(config_file, store=store)
    for u in _with_meta(settings, lambda meta: meta.list_users()):
        if as_json:
            fields: tuple[str, ...] = ("id", "handle", "issuer", "subject", "name", "email")
            fields += ("email_verified", "disabled")
            click.echo(json.dumps({f: getattr(u, f) for f in fields}))
            continue
        email = f"{u.email}{'' if u.email_verified else ' (unverified)'}" if u.email else "-"
        state = "disabled" if u.disabled else "active"
        click.echo(
            f"{u.id}  {state:8}  @{u.handle}  {u.issuer}:{u.subject}  {u.name or '-'}  {email}"
        )


def _set_disabled(settings: Settings, who: str, disabled: bool) -> None:
    async def run(meta: MetaStore) -> str:
        target = await _resolve_user(meta, who)
        await meta.set_user_disabled(target.id, disabled)
        revoked = await meta.revoke_user_sessions(target.id) if disabled else []
        await _audit(meta, "user.disable" if disabled else "user.enable", target=target.id)
        suffix = f", {len(revoked)} session(s) revoked" if disabled else ""
        return f"{target.id}: {'disabled' if disabled else 'enabled'}{suffix}"

    click.echo(_with_meta(settings, run))


@user.command("disable")
@store_option
@config_option
@click.argument("who")
def user_disable(store: str | None, config_file: str | None, who: str) -> None:
    """Disable WHO (user id or verified email) and revoke their sessions."""
    _set_disabled(load_settings(config_file, store=store), who, True)


@user.command("enable")
@store_option
@config_option
@click.argument("who")
def user_enable(store: str | None, config_file: str | None, who: str) -> None:
    """Enable WHO (user id or verified email) again."""
    _set_disabled(load_settings(config_file, store=store), who, False)


@user.command("create-bot")
@store_option
@config_option
@click.argument("name")
def user_create_bot(store: str | None, config_file: str | None, name: str) -> None:
    """Create a bot user (room owners may mint room tokens for bots); prints its id.

    Its handle comes from NAME (made unique): ``collab user list`` shows it."""

    async def run(meta: MetaStore) -> str:
        bot = await meta.upsert_oidc_user(
            BOT_ISSUER,
            uuid.uuid4().hex,
            name=name,
            email=None,
            email_verified=False,
            picture=None,
            preferred_handle=name,
        )
        await _audit(meta, "user.create_bot", target=bot.id)
        return bot.id

    click.echo(_with_meta(load_settings(config_file, store=store), run))


@click.group()
def token() -> None:
    """Create room tokens and personal API tokens."""


@token.command("create")
@store_option
@config_option
@click.option("--user", "who", required=True, help="User id or verified email.")
@click.option("--room", default=None, help="Mint a room token for this room.")
@click.option("--role", default=None, help="Room token's role ceiling (default: the member's).")
@click.option("--ttl", type=float, default=None, help="Room token lifetime in seconds.")
@click.option("--docs", default="*", show_default=True, help="Doc name or fnmatch pattern.")
@click.option("--name", default="cli", show_default=True, help="Personal API token's name.")
def token_create(
    store: str | None,
    config_file: str | None,
    who: str,
    room: str | None,
    role: str | None,
    ttl: float | None,
    docs: str,
    name: str,
) -> None:
    """Print a new token once: a room token with --room, else a personal API token."""
    settings = load_settings(config_file, store=store)
    if room is None:
        if role is not None or ttl is not None:
            raise click.UsageError("--role and --ttl apply to room tokens (--room)")

        async def personal(meta: MetaStore) -> str:
            target = await _resolve_user(meta, who)
            created, secret = await meta.create_api_token(target.id, name)
            await _audit(meta, "token.create", target=created.id, room_id=None)
            return secret

        click.echo(_with_meta(settings, personal))
        return
    lifetime = settings.token_max_ttl if ttl is None else ttl
    if not 1 <= lifetime <= settings.token_max_ttl:  # exp is whole seconds: below 1, exp == iat
        raise click.UsageError(f"--ttl must be in [1, {settings.token_max_ttl:g}] (token_max_ttl)")

    async def for_room(meta: MetaStore) -> tuple[str, Role]:
        target = await _resolve_user(meta, who)
        found = await meta.get_room(room)
        if found is not None and found.is_dm:
            raise click.ClickException("room tokens are not issued for direct messages")
        member = await meta.get_member(room, target.id)
        if member is None:
            raise click.ClickException(f"{target.id} is not a member of {room!r}")
        ceiling = member.role if role is None else _parse_role(role)
        if ceiling > member.role:
            raise click.ClickException(f"{target.id} is only {member.role.name} in {room!r}")
        await _audit(meta, "token.mint", room_id=room, target=target.id)
        # Before the mint: a revocation is kept the longest lifetime recorded (room_tokens).
        await meta.raise_token_ttl_mark(lifetime)
        return target.id, ceiling

    from collab.auth.keys import SecretKeyError, load_secret_keys
    from collab.auth.tokens import mint_room_token

    try:  # before the mint is audited: a key that cannot sign mints nothing
        keys = load_secret_keys(settings)
    except (SecretKeyError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    user_id, ceiling = _with_meta(settings, for_room)
    click.echo(
        mint_room_token(
            keys, user_id=user_id, room_id=room, role=ceiling, ttl=lifetime, doc_pattern=docs
        )
    )


def _parse_role(name: str) -> Role:
    try:
        return Role.parse(name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@store_option
@config_option
@click.option("--room", default=None, help="Only this room's events.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit(
    store: str | None, config_file: str | None, room: str | None, limit: int, as_json: bool
) -> None:
    """The audit log, newest first."""
    events = _with_meta(
        load_settings(config_file, store=store),
        lambda meta: meta.list_audit(room_id=room, limit=max(limit, 0)),
    )
    for e in events:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": e.id,
                        "at": e.at,
                        "action": e.action,
                        "actor": e.actor,
                        "room": e.room_id,
                        "target": e.target,
                        "detail": e.detail,
                        "ip": e.ip,
                    }
                )
            )
            continue
        at = datetime.datetime.fromtimestamp(e.at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = json.dumps(e.detail, sort_keys=True) if e.detail else ""
        click.echo(
            f"{e.id}  {at}  {e.action}  actor={e.actor or '-'}  room={e.room_id or '-'}"
            f"  target={e.target or '-'}  {detail}".rstrip()
        )


@click.command()
@store_option
@config_option
@click.option(
    "--audit-retention",
    type=float,
    default=None,
    help="Seconds of audit rows to keep (0: all) [env COLLAB_AUDIT_RETENTION]",
)
def purge(store: str | None, config_file: str | None, audit_retention: float | None) -> None:
    """Delete used or expired invites, sessions and tickets, old audit rows, and webhook
    deliveries finished longer ago than ``webhook_retention``; fail deliveries left pending for
    a deleted endpoint.

    A running server does the same every ``purge_interval`` seconds.
    """
    settings = load_settings(config_file, store=store, audit_retention=audit_retention)
    now = time.time()
    before = retention_cutoff(now, settings.audit_retention)
    webhooks_before = retention_cutoff(now, settings.webhook_retention)
    purged = _with_meta(
        settings, lambda meta: meta.purge(audit_before=before, webhooks_before=webhooks_before)
    )
    click.echo(
        f"purged {purged.invites} invites, {purged.sessions} sessions, {purged.tickets} tickets,"
        f" {purged.cache} cache entries, {purged.audit} audit rows,"
        f" {purged.webhook_deliveries} webhook deliveries; failed {purged.webhook_orphans}"
        " webhook deliveries left pending for a deleted endpoint"
    )
