"""What the tests share: real processes to test against and the clients and bytes to drive them.

server      a real ``collab serve`` process (CollabServer, free_port)
rawpeer     a scripted Yjs peer over raw ``websockets`` (RawPeer, close_code_of)
pyclient    pycrdt's Provider over ``websockets``: a real user's Python client
jspeer      the y-websocket client under node (tests/js), scripted over stdin/stdout
browser     headless Debian Chromium under Playwright
oidcprovider  a real OpenID provider (tests/oidc/provider.mjs under node)
nginx, tls  a reverse proxy in front of collab, and self-signed certificates
anchors     the servers collab is measured against (pycrdt-websocket: anchors_pycrdt_ws)
frames      y-websocket frames built with collab.wire's encoders (awareness_frame)
ybytes      crafted Yjs update bytes (YJS-WIRE §1), malformed ones included
waiting     wait_until / poll_until: a condition under a deadline, never a bare sleep
"""
