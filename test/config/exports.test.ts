import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'

import { formatExports, mountCommand } from '../../src/config/index.js'
import { parse } from './helpers.js'

const twoVolumes = (nfs: string) => `${nfs}volumes:
  - name: shared-data
    type: local
    mount_path: /workspace/shared-data
    access_mode: read-write
    size_limit: 10Gi
  - name: datasets
    type: opendal
    provider: s3
    config: {bucket: my-ml-datasets}
    mount_path: /workspace/datasets
    access_mode: read-only
`

describe('mountCommand', () => {
  it('read-write volume', () => {
    const config = parse(twoVolumes(''))
    expect(mountCommand(config, config.volumes[0], 2049)).toBe(
      'mount -t nfs -o vers=3,proto=tcp,port=2049,mountport=2049,nolock 127.0.0.1:/shared-data /workspace/shared-data'
    )
  })

  it('read-only volume', () => {
    const config = parse(twoVolumes(''))
    expect(mountCommand(config, config.volumes[1], 2049)).toBe(
      'mount -t nfs -o vers=3,proto=tcp,port=2049,mountport=2049,nolock,ro 127.0.0.1:/datasets /workspace/datasets'
    )
  })

  it('uses the given port', () => {
    const config = parse(twoVolumes('nfs:\n  port: 0\n'))
    expect(mountCommand(config, config.volumes[0], 40123)).toContain('port=40123,mountport=40123,')
  })

  it('brackets IPv6 bind', () => {
    const config = parse(twoVolumes('nfs:\n  bind: "::1"\n'))
    expect(mountCommand(config, config.volumes[0], 2049)).toBe(
      'mount -t nfs -o vers=3,proto=tcp,port=2049,mountport=2049,nolock [::1]:/shared-data /workspace/shared-data'
    )
  })

  it('prefers advertise_host', () => {
    const config = parse(twoVolumes('nfs:\n  bind: 0.0.0.0\n  advertise_host: storage-1.internal\n'))
    expect(mountCommand(config, config.volumes[0], 2049)).toContain(' storage-1.internal:/shared-data ')
  })

  it('brackets IPv6 advertise_host', () => {
    const config = parse(twoVolumes('nfs:\n  bind: "::"\n  advertise_host: "2001:db8::10"\n'))
    expect(mountCommand(config, config.volumes[0], 2049)).toContain(' [2001:db8::10]:/shared-data ')
  })

  it('quotes an unusual mount path', () => {
    const text = "volumes:\n  - {name: a, type: local, mount_path: \"/workspace/it's here\", access_mode: read-write}\n"
    const config = parse(text)
    expect(mountCommand(config, config.volumes[0], 2049).endsWith(` 127.0.0.1:/a '/workspace/it'\\''s here'`)).toBe(true)
  })
})

describe('formatExports', () => {
  it('describes each volume', () => {
    const output = formatExports(parse(twoVolumes('')), 2049)
    expect(output).toContain('# Volume shared-data\n')
    expect(output).toContain('#   type:         local\n')
    expect(output).toContain('#   access mode:  read-write\n')
    expect(output).toContain('#   size limit:   10Gi (10737418240 bytes)\n')
    expect(output).toContain('#   mount path:   /workspace/shared-data\n')
    expect(output).toContain('# Volume datasets\n')
    expect(output).toContain('#   type:         opendal (s3)\n')
    expect(output).toContain('#   access mode:  read-only\n')
    expect(output).toContain('#   size limit:   none\n')
  })

  it('includes mount commands', () => {
    const config = parse(twoVolumes(''))
    const output = formatExports(config, 2049)
    expect(output).toContain(`\n${mountCommand(config, config.volumes[0], 2049)}\n`)
    expect(output).toContain(`\n${mountCommand(config, config.volumes[1], 2049)}\n`)
  })

  it('includes docker volume lines', () => {
    const output = formatExports(parse(twoVolumes('')), 2049)
    expect(output).toContain(
      '\ndocker volume create --driver local --opt type=nfs ' +
        '--opt o=addr=127.0.0.1,vers=3,proto=tcp,port=2049,mountport=2049,nolock --opt device=:/shared-data aegis-shared-data\n'
    )
    expect(output).toContain(
      '\ndocker volume create --driver local --opt type=nfs ' +
        '--opt o=addr=127.0.0.1,vers=3,proto=tcp,port=2049,mountport=2049,nolock,ro --opt device=:/datasets aegis-datasets\n'
    )
  })

  it('includes parseable compose snippets', () => {
    const output = formatExports(parse(twoVolumes('')), 2049)
    const snippets = output.split('\n\n').filter((block) => block.includes('docker-compose'))
    expect(snippets).toHaveLength(2)

    const readOnly = parseYaml(snippets[1])
    expect(readOnly).toEqual({
      volumes: {
        'aegis-datasets': {
          driver: 'local',
          driver_opts: {
            type: 'nfs',
            o: 'addr=127.0.0.1,vers=3,proto=tcp,port=2049,mountport=2049,nolock,ro',
            device: ':/datasets'
          }
        }
      }
    })
    expect(snippets[1]).toContain('"- aegis-datasets:/workspace/datasets:ro"')
    expect(snippets[0]).toContain('"- aegis-shared-data:/workspace/shared-data"')
  })

  it('uses bare IPv6 in docker addr', () => {
    const output = formatExports(parse(twoVolumes('nfs:\n  bind: "::1"\n')), 2049)
    expect(output).toContain('--opt o=addr=::1,vers=3,')
    expect(output).toContain('      o: "addr=::1,vers=3,')
    expect(output).toContain(' [::1]:/shared-data ')
  })

  it('warns about unspecified bind', () => {
    const output = formatExports(parse(twoVolumes('nfs:\n  bind: 0.0.0.0\n')), 2049)
    expect(output).toContain('set nfs.advertise_host')
  })

  it('skips warning with advertise_host', () => {
    const output = formatExports(parse(twoVolumes('nfs:\n  bind: 0.0.0.0\n  advertise_host: 192.0.2.10\n')), 2049)
    expect(output).not.toContain('set nfs.advertise_host')
    expect(output).toContain('addr=192.0.2.10,')
  })

  it('starts with a header', () => {
    const config = parse(`node:\n  name: storage-1\n${twoVolumes('')}`)
    expect(formatExports(config, 2049).split('\n')[0]).toBe('# Node storage-1: 2 NFSv3 export(s) at 127.0.0.1, port 2049')
  })
})

describe('formatExports notes', () => {
  it('adds no note for an opendal volume', () => {
    const config = parse(twoVolumes(''))
    expect(formatExports(config, 2049)).not.toContain('# Note: volume')
  })
})
