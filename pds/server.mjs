// Starts a mock PLC directory and the reference PDS, both on 127.0.0.1.
//
// Configured by the environment that bin/local-pds prepares (PDS_PORT,
// PDS_DATA_DIRECTORY, PDS_ADMIN_PASSWORD, PDS_RATE_LIMITS_ENABLED, ...). When
// both servers answer it prints one line of JSON on stdout:
//   {"pds_url": ..., "plc_url": ..., "admin_password": ..., "data_dir": ..., "pid": ...}
// It stops cleanly on SIGTERM/SIGINT, and when stdin is a pipe that closes
// (the parent that started it died).

import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'
import plcServer from '@did-plc/server'

const { PlcServer, Database } = plcServer
const HOST = '127.0.0.1'

// Express listens on every interface; make an app listen on HOST only.
function bindToLoopback(app) {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, HOST, ...rest)
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, HOST, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

async function startPlc(port) {
  const plc = PlcServer.create({ db: Database.mock(), port })
  bindToLoopback(plc.app)
  const server = await plc.start()
  return { plc, url: `http://${HOST}:${server.address().port}` }
}

function setDefault(name, value) {
  if (!process.env[name]) process.env[name] = value
}

// The server's signing secrets live in its data folder, made once: a PDS
// restarted on the same folder honours the sessions it issued before, as a
// real one does (a new JWT secret would force every client to log in again).
function keptSecrets(dataDir) {
  const file = path.join(dataDir, 'local-pds-secrets.json')
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'))
  const made = {
    jwtSecret: crypto.randomBytes(32).toString('hex'),
    plcRotationKey: crypto.randomBytes(32).toString('hex'),
  }
  fs.writeFileSync(file, JSON.stringify(made), { mode: 0o600 })
  return made
}

function preparePdsEnv({ port, plcUrl, dataDir }) {
  const env = process.env
  const kept = keptSecrets(dataDir)
  env.PDS_PORT = String(port)
  env.PDS_DID_PLC_URL = plcUrl
  // Only the hostname "localhost" makes the PDS describe itself with http://.
  setDefault('PDS_HOSTNAME', 'localhost')
  setDefault('PDS_DEV_MODE', 'true')
  setDefault('PDS_DATA_DIRECTORY', dataDir)
  setDefault('PDS_BLOBSTORE_DISK_LOCATION', path.join(dataDir, 'blobs'))
  setDefault('PDS_BLOBSTORE_DISK_TMP_LOCATION', path.join(dataDir, 'tmp'))
  setDefault('PDS_ADMIN_PASSWORD', crypto.randomBytes(16).toString('hex'))
  setDefault('PDS_JWT_SECRET', kept.jwtSecret)
  setDefault('PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX', kept.plcRotationKey)
  setDefault('PDS_SERVICE_HANDLE_DOMAINS', '.test')
  setDefault('PDS_INVITE_REQUIRED', 'false')
  setDefault('PDS_RATE_LIMITS_ENABLED', 'false')
  setDefault('LOG_ENABLED', 'false')
}

async function startPds() {
  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  bindToLoopback(pds.app)
  try {
    await pds.start()
  } catch (err) {
    await pds.destroy().catch(() => {})
    throw err
  }
  return pds
}

// A port found free can be taken before the PDS listens on it (by any
// process's outgoing connection, or another server started meanwhile): when
// the port was ours to pick, pick another and start again.
async function startPdsOnFreePort({ requested, plcUrl, dataDir }) {
  for (let attempt = 1; ; attempt++) {
    const port = requested || (await freePort())
    preparePdsEnv({ port, plcUrl, dataDir })
    try {
      return { pds: await startPds(), port }
    } catch (err) {
      if (requested || err.code !== 'EADDRINUSE' || attempt >= 5) throw err
      console.error(`local-pds: port ${port} was taken before the PDS listened on it; trying another`)
    }
  }
}

function stopOn(stop) {
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  // A pipe on stdin belongs to a parent process; its end means the parent is
  // gone. A terminal or /dev/null says nothing about the parent, so ignore it.
  const stdin = fs.fstatSync(0)
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on('end', stop)
    process.stdin.on('close', stop)
    process.stdin.resume()
  }
}

async function main() {
  const dataDir = process.env.PDS_DATA_DIRECTORY
  if (!dataDir) throw new Error('PDS_DATA_DIRECTORY is not set')
  fs.mkdirSync(dataDir, { recursive: true })
  const { plc, url: plcUrl } = await startPlc(Number(process.env.PLC_PORT || 0))
  const { pds, port } = await startPdsOnFreePort({ requested: Number(process.env.PDS_PORT || 0), plcUrl, dataDir })

  let stopping = false
  stopOn(async () => {
    if (stopping) return
    stopping = true
    await pds.destroy().catch(() => {})
    await plc.destroy().catch(() => {})
    // bin/local-pds made a temporary data folder: it goes with the server.
    if (process.env.LOCAL_PDS_REMOVE_DATA_DIR === '1') {
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
    process.exit(0)
  })

  const ready = {
    pds_url: `http://${HOST}:${port}`,
    plc_url: plcUrl,
    admin_password: process.env.PDS_ADMIN_PASSWORD,
    data_dir: dataDir,
    rate_limits: process.env.PDS_RATE_LIMITS_ENABLED === 'true',
    pid: process.pid,
  }
  process.stdout.write(JSON.stringify(ready) + '\n')
}

main().catch((err) => {
  console.error(`local-pds: ${err.stack || err}`)
  process.exit(1)
})
