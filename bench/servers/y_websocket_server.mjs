// @y/websocket-server 0.1.1 as its own CLI wires it (src/server.js), with LevelDB persistence
// (YPERSISTENCE, set before its utils module loads) and ws 8 so permessage-deflate is a choice.
//
//   node y_websocket_server.mjs --port P --data DIR [--deflate]
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { HOST, serverArgs } from './common.mjs'

const { port, deflate, data } = serverArgs()
if (data) process.env.YPERSISTENCE = data
const { setupWSConnection } = await import('@y/websocket-server/utils')

const server = http.createServer((_req, res) => res.end('okay'))
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: deflate })
wss.on('connection', setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(port, HOST, () => console.log(`y-websocket-server on ${HOST}:${port} deflate=${deflate}`))
// Like its CLI, no graceful shutdown of its own: SIGTERM ends the process.
process.on('SIGTERM', () => process.exit(0))
