"""collab.fanout.records and the channels of collab.fanout.sharing: what is read back from
Redis is shared input, so each decoder takes exactly what its encoder writes and raises
BadEntry for anything else; the channels skip and count such a value, and a watcher that fails
is counted, never raised into the shared reader."""

from __future__ import annotations

import time

import pytest

from collab.fanout.base import (
    ACCESS,
    FEED,
    READS,
    ROLE,
    ROOM_GONE,
    AwarenessRecord,
    FanoutStats,
    Notice,
)
from collab.fanout.channels import AwarenessChannel, NoticeChannel
from collab.fanout.entries import BadEntry
from collab.fanout.records import (
    MAX_CLOCK,
    MAX_STATE,
    decode_client,
    decode_notice,
    decode_record,
    encode_notice,
    encode_record,
    stream_id,
    trimmed_past,
)

NOTICE = Notice(ROLE, "team", "user-1", "node-a:12:ab", 1765000000.25)
RECORD = AwarenessRecord(7, 3, "user-1", b'{"user":{"name":"A"}}', "node-a", 1765000060.5)


def test_a_notice_and_a_record_read_back_as_written() -> None:
    assert decode_notice(encode_notice(NOTICE)) == NOTICE
    assert decode_record(7, encode_record(RECORD)) == RECORD
    removed = AwarenessRecord(7, 4, "user-1", None, "node-a", 1765000060.5)
    assert decode_record(7, encode_record(removed)) == removed
    assert decode_client(b"7") == 7


@pytest.mark.parametrize(
    "notice",
    [
        Notice(ACCESS, "", "user-1", "node-a", 1.5),  # a user's credential ended
        Notice(ACCESS, "team", "", "node-a", 1.5),  # a room token of the room
        Notice(ROOM_GONE, "team", "", "node-a", 1.5),
        Notice(FEED, "team", "", "node-a", 1.5),  # the room's counts moved
        Notice(FEED, "", "user-1", "node-a", 1.5),  # the user's room list changed
        Notice(READS, "", "user-1", "node-a", 1.5),  # the user's markers turned private
    ],
)
def test_each_kind_of_notice_reads_back_with_what_it_names(notice: Notice) -> None:
    assert decode_notice(encode_notice(notice)) == notice


def _notice(**changes: object) -> dict[bytes, object]:
    fields: dict[bytes, object] = dict(encode_notice(NOTICE))
    for name, value in changes.items():
        if value is None:
            del fields[name.encode()]
        else:
            fields[name.encode()] = value
    return fields


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ([], "unexpected fields"),
        (_notice(kind=None), "unexpected fields"),
        ({**_notice(), b"extra": b"1"}, "unexpected fields"),
        (_notice(kind=b"reset"), "unknown kind"),
        (_notice(kind="role"), "missing kind"),
        (_notice(room=b"no/slash"), "bad room"),
        (_notice(user=b"has space"), "bad user"),
        (_notice(node=b""), "bad node"),
        (_notice(at=b"1e9"), "bad at"),
        (_notice(room=b""), "without what it names"),  # a role change names both
        (_notice(kind=b"room_gone"), "without what it names"),  # a room only
        (_notice(kind=b"feed"), "without what it names"),  # a room or a user, not both
        (_notice(kind=b"access", room=b"", user=b""), "without what it names"),
        (_notice(kind=b"reads"), "without what it names"),  # a user only
        (_notice(kind=b"reads", room=b"", user=b""), "without what it names"),
    ],
)
def test_a_notice_that_collab_did_not_write_is_refused(fields: object, why: str) -> None:
    with pytest.raises(BadEntry, match=why):
        decode_notice(fields)


def _record(*parts: bytes) -> bytes:
    return b"\n".join(parts)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("a str", "missing record"),
        (b"x" * (MAX_STATE + 513), "too large"),
        (_record(b"user-1", b"node-a", b"3", b"1.5"), "bad record"),
        (_record(b"user 1", b"node-a", b"3", b"1.5", b"{}"), "bad principal"),
        (_record(b"user-1", b"node/a", b"3", b"1.5", b"{}"), "bad node"),
        (_record(b"user-1", b"node-a", b"-3", b"1.5", b"{}"), "bad clock"),
        (_record(b"user-1", b"node-a", b"3", b"soon", b"{}"), "bad expiry"),
        (_record(b"user-1", b"node-a", str(MAX_CLOCK + 1).encode(), b"1.5", b"{}"), "range"),
        (_record(b"user-1", b"node-a", b"3", b"1.5", b"{not json"), "not JSON"),
        (_record(b"user-1", b"node-a", b"3", b"1.5", b"[1, 2]"), "not a JSON object"),
    ],
)
def test_a_record_that_collab_did_not_write_is_refused(raw: object, why: str) -> None:
    with pytest.raises(BadEntry, match=why):
        decode_record(7, raw)


@pytest.mark.parametrize(("raw", "why"), [(b"x1", "bad client id"), (None, "missing")])
def test_a_client_id_that_collab_did_not_write_is_refused(raw: object, why: str) -> None:
    with pytest.raises(BadEntry, match=why):
        decode_client(raw)
    with pytest.raises(BadEntry, match="out of range"):
        decode_client(str(MAX_CLOCK + 1).encode())


class Told:
    """A watcher of notices and awareness that records what it was told, and may fail."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.told: list[object] = []

    def _take(self, what: object) -> None:
        self.told.append(what)
        if self.fail:
            raise RuntimeError("watcher broke")

    def on_notice(self, notice: Notice) -> None:
        self._take(notice)

    def on_notice_resync(self) -> None:
        self._take("resync")

    def on_awareness(self, record: AwarenessRecord) -> None:
        self._take(record)

    def on_awareness_refused(self, record: AwarenessRecord) -> None:
        self._take("refused")

    def on_awareness_resync(self) -> None:
        self._take("resync")

    def on_awareness_gap(self) -> None:
        self._take("gap")


def test_the_notice_channel_skips_bad_and_own_entries_and_survives_its_watcher() -> None:
    stats = FanoutStats()
    watcher = Told()
    channel = NoticeChannel(watcher, "node-b", stats)
    own = encode_notice(Notice(ROLE, "team", "user-1", "node-b", 1.0))
    channel.deliver(
        [(b"1-0", {b"kind": b"x"}), (b"2-0", own), (b"3-0", encode_notice(NOTICE))], b"0-0"
    )
    assert watcher.told == ["resync", NOTICE]  # a bad entry may have been one we needed
    assert (stats.bad_entries, stats.notices, stats.errors) == (1, 1, 0)

    broken = NoticeChannel(Told(fail=True), "node-b", stats)
    broken.deliver([(b"4-0", encode_notice(NOTICE))], b"3-0")
    broken.resync()
    assert stats.errors == 2  # counted, never raised into the shared reader


def test_the_awareness_channel_skips_bad_own_and_stale_records() -> None:
    stats = FanoutStats()
    watcher = Told()
    channel = AwarenessChannel(watcher, "node-b", stats)
    fresh = AwarenessRecord(7, 3, "user-1", b"{}", "node-a", time.time() + 60)
    stale = AwarenessRecord(8, 3, "user-1", b"{}", "node-a", time.time() - 60)
    gone = AwarenessRecord(9, 4, "user-1", None, "node-a", time.time() - 60)
    own = AwarenessRecord(10, 3, "user-1", b"{}", "node-b", time.time() + 60)

    def change(record: AwarenessRecord) -> tuple[bytes, object]:
        return b"1-0", {b"c": str(record.client).encode(), b"v": encode_record(record)}

    bad = [(b"0-0", {b"c": b"7"}), (b"0-1", [b"c"]), (b"0-2", {b"c": b"x", b"v": b""})]
    channel.deliver([*bad, *map(change, (fresh, stale, gone, own))], b"0-0")
    told = [r.client for r in watcher.told if isinstance(r, AwarenessRecord)]
    assert told == [7, 9] and len(watcher.told) == 2  # a removal counts however old
    assert (stats.bad_entries, stats.awareness_received, stats.errors) == (3, 2, 0)

    broken = AwarenessChannel(Told(fail=True), "node-b", stats)
    broken.deliver([change(fresh)], b"0-0")
    broken.resync()
    assert stats.errors == 2


def test_trimmed_past_says_whether_an_entry_after_the_cursor_may_have_been_removed() -> None:
    def info(first: bytes | None, **more: object) -> dict[str, object]:
        return {"first-entry": (first, {}) if first else None, "max-deleted-entry-id": b"0-0"} | {
            k.replace("_", "-"): v for k, v in more.items()
        }

    # Trims take the oldest first: the cursor's own entry still there, nothing unread went.
    assert trimmed_past(info(b"5-0"), b"5-0") is False
    assert trimmed_past(info(b"3-0"), b"9-7") is False
    assert trimmed_past(info(b"12-0"), b"9-7") is True  # 12 > 9 as numbers, not as text
    assert trimmed_past(info(b"5-1"), b"5-0") is True
    # A deletion past the cursor (Redis 7.0 keeps the newest id deleted; trims do not move it).
    assert trimmed_past(info(b"1-0", max_deleted_entry_id=b"6-0"), b"5-0") is True
    assert trimmed_past(info(b"1-0", max_deleted_entry_id=b"4-0"), b"5-0") is False
    # From a stream that was empty (0-0): whether anything was ever removed.
    assert trimmed_past(info(b"7-0", entries_added=3, length=3), b"0-0") is False
    assert trimmed_past(info(b"7-0", entries_added=5, length=3), b"0-0") is True
    assert trimmed_past(info(b"7-0"), b"0-0") is True  # before Redis 7.0: cannot tell
    # A reply it cannot read, or a stream emptied since: a gap (a recheck is always correct).
    replies: list[object] = [None, [], info(None), info(b"x"), {"first-entry": (b"-",)}]
    for reply in replies:
        assert trimmed_past(reply, b"1-0") is True
    assert stream_id(b"1700000000000-3") == (1700000000000, 3) and stream_id("0-0") == (0, 0)
