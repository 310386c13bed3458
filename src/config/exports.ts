// Mount instructions for NFS clients: the output of `aegis-node exports` and single mount commands.

import { ipFamily, isUnspecifiedAddress } from './network.js'
import type { NodeConfig, VolumeConfig } from './schema.js'
import { formatSize } from './size.js'

/** Returns the host that clients connect to: nfs.advertise_host, or else the bind address. */
export function advertisedHost(config: NodeConfig): string {
  return config.nfs.advertiseHost ?? config.nfs.bind
}

/**
 * Builds the NFS mount options for a volume. MOUNT and NFS share one port, and `nolock` is set
 * because the node serves no NLM lock service.
 */
function mountOptions(volume: VolumeConfig, port: number): string {
  const options = ['vers=3', 'proto=tcp', `port=${port}`, `mountport=${port}`, 'nolock']
  if (volume.accessMode === 'read-only') options.push('ro')
  return options.join(',')
}

/** Quotes a path for a POSIX shell when it contains anything beyond letters, digits and `/._-`. */
function shellQuote(text: string): string {
  if (/^[A-Za-z0-9/._-]+$/.test(text)) return text
  return `'${text.replaceAll("'", `'\\''`)}'`
}

/**
 * Returns the Linux command that mounts `volume` at its mount path, such as
 * `mount -t nfs -o vers=3,proto=tcp,port=2049,mountport=2049,nolock 127.0.0.1:/data /workspace/data`.
 * An IPv6 host is written in brackets.
 */
export function mountCommand(config: NodeConfig, volume: VolumeConfig, port: number): string {
  const host = advertisedHost(config)
  const serverHost = ipFamily(host) === 6 ? `[${host}]` : host
  return `mount -t nfs -o ${mountOptions(volume, port)} ${serverHost}:/${volume.name} ${shellQuote(volume.mountPath)}`
}

/**
 * Returns the value of the docker `o` option. Docker's local volume driver passes `addr=` to Go's
 * net.ResolveIPAddr (moby volume/local/local_unix.go), which rejects brackets, so IPv6 stays bare.
 */
function dockerMountOptions(config: NodeConfig, volume: VolumeConfig, port: number): string {
  return `addr=${advertisedHost(config)},${mountOptions(volume, port)}`
}

function dockerVolumeCommand(config: NodeConfig, volume: VolumeConfig, port: number): string {
  return (
    'docker volume create --driver local --opt type=nfs ' +
    `--opt o=${dockerMountOptions(config, volume, port)} --opt device=:/${volume.name} aegis-${volume.name}`
  )
}

function composeSnippet(config: NodeConfig, volume: VolumeConfig, port: number): string[] {
  return [
    'volumes:',
    `  aegis-${volume.name}:`,
    '    driver: local',
    '    driver_opts:',
    '      type: nfs',
    `      o: "${dockerMountOptions(config, volume, port)}"`,
    `      device: ":/${volume.name}"`
  ]
}

function describeSizeLimit(volume: VolumeConfig): string {
  if (volume.sizeLimitBytes === null) return 'none'
  return `${formatSize(volume.sizeLimitBytes)} (${volume.sizeLimitBytes} bytes)`
}

function formatVolume(config: NodeConfig, volume: VolumeConfig, port: number): string {
  const readOnly = volume.accessMode === 'read-only'
  const serviceMount = `- aegis-${volume.name}:${volume.mountPath}${readOnly ? ':ro' : ''}`
  const lines = [
    `# Volume ${volume.name}`,
    `#   type:         ${volume.type}${volume.provider === null ? '' : ` (${volume.provider})`}`,
    `#   access mode:  ${volume.accessMode}`,
    `#   size limit:   ${describeSizeLimit(volume)}`,
    `#   mount path:   ${volume.mountPath}`,
    '',
    '# Linux NFS client (run as root):',
    mountCommand(config, volume, port),
    '',
    '# Docker volume:',
    dockerVolumeCommand(config, volume, port),
    '',
    `# docker-compose, then "${serviceMount}" in a service's volumes:`,
    ...composeSnippet(config, volume, port)
  ]
  return lines.join('\n')
}

/** Formats the mount instructions for every volume of `config`, served on `port`. */
export function formatExports(config: NodeConfig, port: number): string {
  const host = advertisedHost(config)
  const header = [`# Node ${config.nodeName}: ${config.volumes.length} NFSv3 export(s) at ${host}, port ${port}`]
  if (port === 0) {
    header.push('# Note: port 0 means the node picks a free port when it starts; take the port from its', '# "listening" log line, or set nfs.port.')
  }
  if (isUnspecifiedAddress(host)) {
    header.push(
      `# Note: ${host} accepts connections on every interface but is not an address clients can use;`,
      '# set nfs.advertise_host to the host name or address that agent containers reach.'
    )
  }

  const blocks = [
    header.join('\n'),
    ...config.volumes.map((volume) => formatVolume(config, volume, port))
  ]
  return blocks.join('\n\n') + '\n'
}
