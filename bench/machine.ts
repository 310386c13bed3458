// Describes the machine a benchmark ran on, for the results files under bench/results/: CPU,
// memory, kernel, Node.js release and the file system of the temporary directory.

import { execFileSync } from 'node:child_process'
import os from 'node:os'

/** Returns the machine's description, followed by the entries of `extra` (such as a server's version). */
export function machine(extra: Record<string, string> = {}): Record<string, string> {
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  return {
    cpu: `${os.cpus().length} x ${cpu}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: os.release(),
    node: process.version,
    ...extra,
    // The benchmarks keep their files and staging areas under the temporary directory.
    filesystem: execFileSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).split('\n')[1]?.split(/\s+/)[1] ?? 'unknown'
  }
}
