// A mesh peer that measures SEAL read_at against an owner node, with no NFS on either side. It
// connects with its own identity, which the owner must trust and permit, and finds FILE in
// VOLUME. For each case it keeps N read_at requests in flight for a number of seconds. It prints
// JSON lines: {"event": "start"} right before each timed case, then {"event": "result"} with the
// rate, the latency of single requests and this process's CPU time. At the end it prints
// {"event": "verify"} with the outcome of the content check, or {"event": "error"}.
//
// Usage: seal-read-at.mjs DATA_DIR OWNER_ADDRESS VOLUME FILE CASES_JSON [LOCAL_COPY]
//   CASES_JSON  [{"label": "...", "pattern": "random" | "sequential", "lengthBytes": 4096,
//               "inflight": 1, "seconds": 5}, ...]
//   LOCAL_COPY  path of the same file on disk; after the timed cases, 256 random reads through
//               the mesh are compared with it byte for byte.
// Before the timed cases, the first case runs for one untimed second as a warm-up. Uses the
// compiled node (npm run build).

import { randomInt } from 'node:crypto'
import fs from 'node:fs'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { loadOrCreateIdentity } from '../dist/src/mesh/identity.js'
import { createMeshNode } from '../dist/src/mesh/libp2p.js'
import { SealClient } from '../dist/src/mesh/seal-client.js'
import { decodeAttributes } from '../dist/src/mesh/wire.js'

const REQUEST_TIMEOUT_MS = 10_000
const WARM_UP_SECONDS = 1
const VERIFIED_READS = 256

const [dataDir, ownerAddress, volume, fileName, casesJson, localCopy] = process.argv.slice(2)
if (casesJson === undefined) {
  process.stderr.write('missing arguments; usage: seal-read-at.mjs DATA_DIR OWNER_ADDRESS VOLUME FILE CASES_JSON [LOCAL_COPY]\n')
  process.exit(2)
}
const cases = JSON.parse(casesJson)
const owner = ownerAddress.slice(ownerAddress.lastIndexOf('/p2p/') + 5)

const logger = pino({ level: 'silent' })
const identity = await loadOrCreateIdentity(dataDir)
const node = await createMeshNode({ identity, listen: ['/ip4/127.0.0.1/tcp/0'], trustedPeers: [owner], logger })
const client = new SealClient({ node, identity, logger, timeoutMs: REQUEST_TIMEOUT_MS })

/** Returns the value at quantile `q` of ascending `sorted`, by the nearest-rank method. */
function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
}

/** Runs one case and returns its figures. Throws when a reply is short or the owner returns an error. */
async function runCase(handle, sizeBytes, benchCase) {
  const { lengthBytes, inflight, seconds, pattern } = benchCase
  const slots = Math.floor(sizeBytes / lengthBytes)
  if (slots < 1) throw new Error(`${fileName} has ${sizeBytes} bytes, fewer than one read of ${lengthBytes}; use a larger file`)
  let nextSlot = 0
  const latenciesMs = []
  let bytes = 0
  const cpuAtStart = process.cpuUsage()
  const started = performance.now()
  const deadline = started + seconds * 1000

  // Each worker keeps one request in flight, so `inflight` workers keep that many.
  const worker = async () => {
    while (performance.now() < deadline) {
      const slot = pattern === 'random' ? randomInt(slots) : nextSlot++ % slots
      const offset = slot * lengthBytes
      const sent = performance.now()
      const reply = await client.call(owner, { op: 'read_at', volume, handle, args: { offset, length: lengthBytes } })
      latenciesMs.push(performance.now() - sent)
      const length = reply.data?.length ?? 0
      if (length !== lengthBytes) throw new Error(`read_at of ${lengthBytes} bytes at offset ${offset} returned ${length} bytes`)
      bytes += length
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker))

  const elapsedSeconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuAtStart)
  latenciesMs.sort((a, b) => a - b)
  return {
    ...benchCase,
    ops: latenciesMs.length,
    bytes,
    elapsedSeconds,
    opsPerSecond: latenciesMs.length / elapsedSeconds,
    mibPerSecond: bytes / 2 ** 20 / elapsedSeconds,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    latencyMs: {
      p50: quantile(latenciesMs, 0.5),
      p90: quantile(latenciesMs, 0.9),
      p99: quantile(latenciesMs, 0.99),
      max: latenciesMs[latenciesMs.length - 1]
    }
  }
}

/** Compares random reads through the mesh with the file on disk and returns the offsets that differ. */
async function verifyAgainst(path, handle, sizeBytes, lengthBytes) {
  const descriptor = fs.openSync(path, 'r')
  const expected = Buffer.alloc(lengthBytes)
  const mismatches = []
  try {
    for (let i = 0; i < VERIFIED_READS; i++) {
      const offset = randomInt(Math.floor(sizeBytes / lengthBytes)) * lengthBytes
      const reply = await client.call(owner, { op: 'read_at', volume, handle, args: { offset, length: lengthBytes } })
      fs.readSync(descriptor, expected, 0, lengthBytes, offset)
      if (reply.data === null || !expected.equals(reply.data)) mismatches.push(offset)
    }
  } finally {
    fs.closeSync(descriptor)
  }
  return mismatches
}

let exitCode = 0
try {
  await node.dial(multiaddr(ownerAddress), { signal: AbortSignal.timeout(5_000) })
  const root = await client.call(owner, { op: 'getattr', volume, args: {} })
  const found = await client.call(owner, { op: 'lookup', volume, handle: root.result.h, args: { name: fileName } })
  const handle = found.result.h
  const sizeBytes = decodeAttributes(found.result.a).sizeBytes

  await runCase(handle, sizeBytes, { ...cases[0], seconds: WARM_UP_SECONDS })
  for (const benchCase of cases) {
    process.stdout.write(JSON.stringify({ event: 'start', label: benchCase.label }) + '\n')
    process.stdout.write(JSON.stringify({ event: 'result', ...(await runCase(handle, sizeBytes, benchCase)) }) + '\n')
  }
  if (localCopy !== undefined) {
    const mismatches = await verifyAgainst(localCopy, handle, sizeBytes, cases[0].lengthBytes)
    process.stdout.write(JSON.stringify({ event: 'verify', ok: mismatches.length === 0, reads: VERIFIED_READS, mismatchedOffsets: mismatches }) + '\n')
    if (mismatches.length > 0) exitCode = 1
  }
} catch (error) {
  process.stdout.write(JSON.stringify({ event: 'error', ok: false, code: error.code ?? null, message: error.message }) + '\n')
  exitCode = 1
} finally {
  client.close()
  await node.stop()
}
process.exit(exitCode)
