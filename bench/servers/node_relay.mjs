// The physical limit in node: a `ws` server that forwards every frame to the other sockets on
// the same path, byte for byte, without parsing anything.
//
//   node node_relay.mjs --port P [--deflate]
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { HOST, serverArgs } from './common.mjs'

const { port, deflate } = serverArgs()
const rooms = new Map() // path -> Set<WebSocket>

const server = http.createServer((_req, res) => res.end('relay'))
const wss = new WebSocketServer({ server, perMessageDeflate: deflate })

wss.on('connection', (ws, req) => {
  const path = (req.url || '/').split('?')[0]
  let peers = rooms.get(path)
  if (!peers) rooms.set(path, (peers = new Set()))
  peers.add(ws)
  ws.on('message', (data, isBinary) => {
    for (const other of peers) {
      if (other !== ws && other.readyState === 1) other.send(data, { binary: isBinary })
    }
  })
  ws.on('close', () => {
    peers.delete(ws)
    if (peers.size === 0) rooms.delete(path)
  })
  ws.on('error', () => {})
})

server.listen(port, HOST, () => console.log(`node relay on ${HOST}:${port} deflate=${deflate}`))
process.on('SIGTERM', () => process.exit(0))
