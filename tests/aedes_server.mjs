// aedes on 127.0.0.1 for the interop tests (tests/interop_brokers.py starts it):
//   AEDES_DIR=<dir holding node_modules/aedes> node aedes_server.mjs PORT USER:PASS
// Every client must log in as USER with PASS; anything else gets CONNACK 4.
import net from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const dir = process.env.AEDES_DIR
const entry = createRequire(join(dir, 'package.json')).resolve('aedes')
const { Aedes } = await import(pathToFileURL(entry).href)
const port = Number(process.argv[2])
const [user, pass] = (process.argv[3] || ':').split(':')
const aedes = await Aedes.createBroker()
aedes.authenticate = (client, u, p, cb) => (u === user && p?.toString() === pass)
  ? cb(null, true)
  : cb(Object.assign(new Error('bad user name or password'), { returnCode: 4 }), false)
const server = net.createServer({ noDelay: true }, aedes.handle)
server.listen(port, '127.0.0.1', () => console.log('aedes listening', port))
const stop = () => { server.close(); aedes.close(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
