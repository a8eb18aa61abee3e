"""Three real `collab serve` nodes on PostgreSQL and Redis behind a real nginx running the
shipped deploy/nginx-collab-nodes.conf, rewritten only for ports, paths and the certificate
(tests/support/balancer.py).

Issue 15, `deploy/` (SCALE-OUT.md point 8: routing a room to one node is a hint):

- WebSocket sync works through it (TLS, the /collab/ sub-path);
- what concerns one room goes to one node: two sockets on one doc of the room and a third on
  another doc of it are all on one node (each node's ``collab_peers``), and so is the room's
  API call (nginx's access log names the node); rooms spread over the nodes, and requests
  about no room rotate over all three;
- that node killed (SIGKILL) with an update in flight: nginx tries it, fails, and takes the
  room to the next node (its log says so), every client reconnects through nginx at the first
  try and lands on that ONE node, and every edit, acknowledged, in flight or typed while
  disconnected, is in every client, in a fresh client through nginx and in a fresh client of
  each surviving node: nothing lost;
- nginx itself restarted: the clients reconnect to the same node (the first socket it routes
  tries the dead node and goes on to that one without the client knowing), nothing lost
  either;
- the dead node restarted: once nginx tries it again (10 s after its last failure) a new
  socket of the room goes to it while the others stay on the next node, and the room, now on
  two nodes, still converges (through Redis): the routing was only ever a hint;
- nginx's access log keeps no credential.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from pycrdt import Doc, Text

from tests.support.balancer import Balancer
from tests.support.nginx import require_nginx
from tests.support.rawpeer import RawPeer
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix
from tests.support.server import CollabServer, NodesFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anyio

ROOM, DOC, OTHER_DOC = "team", "notes", "plan"
ROOM_PATH = f"/api/v1/rooms/{ROOM}/docs"  # an API call about the room
ROOM_API = "/collab" + ROOM_PATH  # as nginx logs it


class Client:
    """A y-websocket-like client through nginx: one Doc kept across reconnects (the sync
    exchange of each new socket sends the node whatever it lacks), tokens appended to a Text."""

    def __init__(self, balancer: Balancer, doc: str, tag: str, token: str) -> None:
        self.url = balancer.ws_url(ROOM, doc, token)
        self.context = balancer.context
        self.tag = tag
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("text", type=Text)
        self.peers: list[RawPeer] = []
        self.attempted: set[str] = set()
        self.counter = 0

    @property
    def peer(self) -> RawPeer:
        return self.peers[-1]

    async def connect(self) -> None:
        """One attempt, no retry: nginx itself must find a node that answers."""
        self.peers.append(await RawPeer.connect(self.url, doc=self.doc, ssl=self.context))

    async def dropped(self) -> None:
        with anyio.fail_after(10):
            await self.peer.closed.wait()

    def _token(self) -> str:
        token = f"{self.tag}{len(self.attempted)};"
        self.attempted.add(token)
        return token

    async def send(self) -> None:
        """Append a token and send it, without waiting for anything."""
        await self.peer.insert(len(str(self.text)), self._token())

    async def write(self, count: int) -> None:
        """Append ``count`` tokens, each acknowledged ("saved") before the next."""
        for _ in range(count):
            await self.send()
            await self.settle()

    async def settle(self) -> None:
        """A "saved" request covering everything this socket sent, answered."""
        self.counter += 1
        counter, peer = self.counter, self.peer
        await peer.request_saved(counter)
        await peer.wait_for(lambda: peer.saved >= counter, 10)

    def type_offline(self, count: int) -> None:
        """Edits made while disconnected: in the Doc only, sent by the next sync."""
        for _ in range(count):
            self.text.insert(len(str(self.text)), self._token())

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


def has_exactly(text: str, tokens: set[str]) -> bool:
    return len(text) == sum(map(len, tokens)) and all(t in text for t in tokens)


async def peers_by_node(servers: list[CollabServer]) -> list[float]:
    """Each node's ``collab_peers`` (sockets joined to a loaded doc); -1: not answering."""
    found: list[float] = []
    async with httpx.AsyncClient(timeout=5) as http:
        for server in servers:
            try:
                text = (await http.get(server.http_url + "/metrics")).text
            except httpx.HTTPError:
                found.append(-1)
                continue
            lines = [x for x in text.splitlines() if x.startswith("collab_peers ")]
            found.append(float(lines[0].split()[1]) if lines else -1)
    return found


async def all_on_one_node(servers: list[CollabServer], count: int) -> CollabServer:
    """The one node holding all ``count`` sockets, while the others hold none."""
    placed: list[float] = []

    async def settled() -> bool:
        placed[:] = await peers_by_node(servers)
        return sorted(placed) == [0] * (len(servers) - 1) + [count]

    await wait_until(settled, 10, interval=0.05, what=lambda: placed)
    return servers[placed.index(count)]


def addr(server: CollabServer) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def shared() -> Iterator[dict[str, Any]]:
    """Settings for nodes on the shared Redis, under a prefix of this test's own."""
    url, prefix = shared_redis(), unique_prefix()
    yield {"fanout": url, "fanout_prefix": prefix}
    delete_prefix(url, prefix)


async def test_three_nodes_behind_the_shipped_nginx(
    pg_url: str, nodes: NodesFactory, shared: dict[str, Any], tmp_path: Path
) -> None:
    require_nginx()  # before starting anything
    key = secrets.token_urlsafe(32)  # one for every node: PostgreSQL has no dir to keep it in
    servers = nodes(3, store=pg_url, secret_key=key, **shared)
    for server in servers:
        server.remember(key)
    token = servers[0].dev_token  # the same on every node
    balancer = Balancer(tmp_path / "nginx", [s.port for s in servers])
    alice, bob, dave = (Client(balancer, DOC, tag, token) for tag in ("a", "b", "d"))
    carol = Client(balancer, OTHER_DOC, "c", token)  # another doc of the same room
    try:
        balancer.start()
        with anyio.fail_after(120):
            dead, heir = await scenario(balancer, servers, [alice, bob, carol], token)
            await node_back(balancer, servers, dead, heir, [alice, bob], dave)
    finally:
        for client in (alice, bob, carol, dave):
            await client.close()
        balancer.stop()
    # The access log keeps no credential. (The error log records the request line of a request
    # whose node failed, query string included, as deploy/README.md says.)
    access = balancer.access_log()
    assert f"/collab/ws/{ROOM}/{DOC}?***" in access
    assert token not in access and key not in access
    # After nginx restarted, the first request it routed was a socket of the room: it tried the
    # dead node, then the next one, and the client never knew (the line is written at close).
    sockets = balancer.nodes_for(f"/collab/ws/{ROOM}/{DOC}?***")
    sockets += balancer.nodes_for(f"/collab/ws/{ROOM}/{OTHER_DOC}?***")
    assert f"{addr(dead)}, {addr(heir)}" in sockets, sockets


async def scenario(
    balancer: Balancer, servers: list[CollabServer], clients: list[Client], token: str
) -> tuple[CollabServer, CollabServer]:
    """The scenario of the module docstring; (the node killed, the one its room moved to)."""
    alice, bob, _ = clients
    editors = [alice, bob]
    for client in clients:
        await client.connect()
    owner = await all_on_one_node(servers, 3)
    auth = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(verify=balancer.context, headers=auth, timeout=10) as http:
        assert (await http.get(balancer.base + ROOM_PATH)).status_code == 200
        for i in range(12):
            await http.get(f"{balancer.base}/api/v1/rooms/spread{i}/docs")
        for _ in range(6):
            assert (await http.get(f"{balancer.base}/api/v1/server")).status_code == 200
        assert (await http.get(f"{balancer.base}/metrics")).status_code == 404  # per node
    await logged(balancer, "/collab/api/v1/server", 6)  # every request before it is logged too
    assert balancer.nodes_for(ROOM_API) == [addr(owner)]
    rooms = [balancer.nodes_for(f"/collab/api/v1/rooms/spread{i}/docs") for i in range(12)]
    assert all(len(nodes) == 1 for nodes in rooms), rooms
    spread = {nodes[0] for nodes in rooms}
    assert len(spread) >= 2, spread  # 3^-11 odds of all twelve rooms on one node
    assert len(set(balancer.nodes_for("/collab/api/v1/server"))) == 3  # round-robin

    with anyio.fail_after(20):  # sync through nginx
        async with anyio.create_task_group() as tg:
            for client in editors:
                tg.start_soon(client.write, 5)
    await converge(editors, servers, balancer, token)

    # kill -9 of the room's node, with an update of alice's in flight.
    await alice.send()
    assert owner.proc is not None
    owner.proc.kill()
    await anyio.to_thread.run_sync(owner.proc.wait, 10)
    survivors = [s for s in servers if s is not owner]
    for client in clients:
        await client.dropped()
    for client in editors:
        client.type_offline(2)
    async with httpx.AsyncClient(verify=balancer.context, headers=auth, timeout=10) as http:
        assert (await http.get(balancer.base + ROOM_PATH)).status_code == 200
        tried = (await logged(balancer, ROOM_API, 2))[-1]  # the dead node, then the next one
        assert tried.startswith(addr(owner) + ", "), tried
        for client in clients:
            await client.connect()
        heir = await all_on_one_node(survivors, 3)
        assert tried == f"{addr(owner)}, {addr(heir)}"
        assert (await http.get(balancer.base + ROOM_PATH)).status_code == 200
        assert (await logged(balancer, ROOM_API, 3))[-1] == addr(heir)  # the dead one is out
    for client in editors:
        await client.settle()  # what the new socket's sync re-sent is committed
        await client.write(3)
    await converge(editors, survivors, balancer, token)

    # nginx restarted: every socket drops; they come back to the same node, nothing lost.
    await anyio.to_thread.run_sync(balancer.stop)
    for client in clients:
        await client.dropped()
    for client in editors:
        client.type_offline(1)
    await anyio.to_thread.run_sync(balancer.start)
    for client in clients:
        await client.connect()
    assert await all_on_one_node(survivors, 3) is heir
    for client in editors:
        await client.settle()
        await client.write(2)
    await converge(editors, survivors, balancer, token)
    return owner, heir


async def converge(
    editors: list[Client], servers: list[CollabServer], balancer: Balancer, token: str
) -> None:
    """Every editor holds exactly every token any of them attempted, and so do a fresh client
    through nginx and a fresh client of each node (a join reads PostgreSQL's head first)."""
    expected: set[str] = set().union(*(c.attempted for c in editors))

    def texts() -> list[str]:
        return [str(c.text) for c in editors]

    await wait_until(
        lambda: len(set(texts())) == 1 and has_exactly(texts()[0], expected),
        10,
        interval=0.02,
        what=texts,
    )
    fresh = [await RawPeer.connect(balancer.ws_url(ROOM, DOC, token), ssl=balancer.context)]
    fresh += [await RawPeer.connect(s.ws_url(ROOM, DOC)) for s in servers]
    for peer in fresh:
        await peer.close()
    assert [str(p.text) for p in fresh] == [texts()[0]] * len(fresh)


async def logged(balancer: Balancer, target: str, count: int) -> list[str]:
    """The nodes of the first ``count`` requests for ``target``, once nginx logged them (it
    writes a line after the response has left)."""
    await wait_until(lambda: len(balancer.nodes_for(target)) >= count, 5)
    return balancer.nodes_for(target)[:count]


async def node_back(
    balancer: Balancer,
    servers: list[CollabServer],
    dead: CollabServer,
    heir: CollabServer,
    editors: list[Client],
    late: Client,
) -> None:
    """The dead node restarted: once nginx tries it again (``fail_timeout``, 10 s after the
    last failure) the room's new sockets go to it, while the old ones stay on the heir. One
    room on two nodes converges all the same, through Redis: routing was only a hint."""
    await anyio.to_thread.run_sync(dead.start)  # same port, same database
    token = dead.dev_token  # the same on every node
    auth = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(verify=balancer.context, headers=auth, timeout=10) as http:

        async def routed_home() -> bool:
            before = len(balancer.nodes_for(ROOM_API))
            assert (await http.get(balancer.base + ROOM_PATH)).status_code == 200
            return (await logged(balancer, ROOM_API, before + 1))[-1] == addr(dead)

        await wait_until(routed_home, 20, interval=0.5)  # a request every 0.5 s
    await late.connect()
    expected = [3.0 if s is heir else 1.0 if s is dead else 0.0 for s in servers]
    placed: list[float] = []

    async def as_expected() -> bool:
        placed[:] = await peers_by_node(servers)
        return placed == expected

    await wait_until(as_expected, 10, interval=0.05, what=lambda: placed)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for client in [*editors, late]:
                tg.start_soon(client.write, 2)
    await converge([*editors, late], servers, balancer, token)
