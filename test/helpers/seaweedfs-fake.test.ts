// Pins the SeaweedFS filer behaviours that the fake in seaweedfs-fake.ts reproduces, so that the
// fake cannot drift from the filer's HTTP API without a test failing here.

import { createHash } from 'node:crypto'
import * as http from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startFakeFiler, type FakeFiler, type FakeFilerOptions } from './seaweedfs-fake.js'

const MODE_DIR = 2 ** 31

let filer: FakeFiler

async function restart(options: FakeFilerOptions): Promise<void> {
  await filer.stop()
  filer = await startFakeFiler(options)
}

beforeEach(async () => {
  filer = await startFakeFiler()
})

afterEach(async () => {
  await filer.stop()
})

/** Percent-encodes every segment of a decoded path, as a client must. */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

function urlFor(path: string, query = ''): string {
  return `${filer.url}${encodePath(path)}${query === '' ? '' : `?${query}`}`
}

/** PUTs a body, sending a string as bytes because fetch would label it text/plain and the filer stores that label. */
async function put(path: string, body: string | Buffer, query = '', headers: Record<string, string> = {}): Promise<Response> {
  return fetch(urlFor(path, query), { method: 'PUT', body: typeof body === 'string' ? Buffer.from(body) : body, headers })
}

async function mkdir(path: string, query = ''): Promise<Response> {
  return fetch(urlFor(`${path}/`, query), { method: 'POST' })
}

/** POSTs one multipart part. The body is built by hand because FormData always names a Blob part. */
async function postMultipart(path: string, content: Buffer, fileName?: string): Promise<Response> {
  const boundary = 'fake-filer-test-boundary'
  const disposition = fileName === undefined ? 'form-data; name="file"' : `form-data; name="file"; filename="${fileName}"`
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: application/octet-stream\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  return fetch(urlFor(path), { method: 'POST', body, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } })
}

async function getMetadata(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(urlFor(path, 'metadata=true'))
  expect(response.status).toBe(200)
  return (await response.json()) as Record<string, unknown>
}

interface Listing {
  Version: string
  Path: string
  Entries: Array<Record<string, unknown>> | null
  Limit: number
  LastFileName: string
  ShouldDisplayLoadMore: boolean
  EmptyFolder: boolean
}

async function list(path: string, query = ''): Promise<Listing> {
  const directoryUrl = path === '/' ? `${filer.url}/` : urlFor(`${path}/`)
  const response = await fetch(`${directoryUrl}${query === '' ? '' : `?${query}`}`, { headers: { Accept: 'application/json' } })
  expect(response.status).toBe(200)
  return (await response.json()) as Listing
}

function md5(data: string | Buffer): Buffer {
  return createHash('md5').update(data).digest()
}

interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** Sends a request target exactly as given, which fetch would normalise first. */
async function rawRequest(method: string, target: string): Promise<RawResponse> {
  const { port } = new URL(filer.url)
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port: Number(port), method, path: target }, (response) => {
      const parts: Buffer[] = []
      response.on('data', (part: Buffer) => parts.push(part))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(parts) }))
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end()
  })
}

describe('uploads', () => {
  it('PUT stores the raw body', async () => {
    const response = await put('/docs/a.txt', 'hello')

    expect(response.status).toBe(201)
    expect(await response.json()).toEqual({ name: 'a.txt', size: 5 })
    expect(response.headers.get('content-md5')).toBe(md5('hello').toString('base64'))
    expect(filer.readFile('/docs/a.txt')?.toString()).toBe('hello')
  })

  it('PUT creates missing parents', async () => {
    await put('/p/q/r.bin', 'x')

    for (const directory of ['/p', '/p/q']) {
      const stat = filer.stat(directory)
      expect(stat?.isDirectory).toBe(true)
      // Parents take the new entry's mode plus 0111.
      expect(stat?.mode).toBe(0o771)
    }
    expect(filer.stat('/p/q/r.bin')?.mode).toBe(0o660)
  })

  it('POST accepts FormData uploads', async () => {
    const form = new FormData()
    form.append('file', new Blob([Buffer.from('from form')]), 'form.txt')
    const response = await fetch(urlFor('/forms/'), { method: 'POST', body: form })

    expect(response.status).toBe(201)
    expect(filer.readFile('/forms/form.txt')?.toString()).toBe('from form')
  })

  it('POST stores the first multipart part', async () => {
    await mkdir('/up')
    const response = await postMultipart('/up/', Buffer.from('multipart body'), 'sent.txt')

    expect(response.status).toBe(201)
    expect(await response.json()).toEqual({ name: 'sent.txt', size: 14 })
    expect(filer.readFile('/up/sent.txt')?.toString()).toBe('multipart body')
  })

  it('POST multipart keeps a file path', async () => {
    const response = await postMultipart('/x/target.bin', Buffer.from('data'), 'other.txt')

    expect(response.status).toBe(201)
    expect(filer.readFile('/x/target.bin')?.toString()).toBe('data')
    expect(filer.exists('/x/other.txt')).toBe(false)
  })

  it('POST with a raw body fails', async () => {
    const response = await fetch(urlFor('/raw.txt'), { method: 'POST', body: 'not multipart', headers: { 'Content-Type': 'text/plain' } })

    expect(response.status).toBe(500)
    expect(((await response.json()) as { error: string }).error).toContain('multipart/form-data')
    expect(filer.exists('/raw.txt')).toBe(false)
  })

  it('PUT onto a directory writes inside it', async () => {
    await mkdir('/d')
    const response = await put('/d', 'inner')

    expect(response.status).toBe(201)
    expect(filer.stat('/d')?.isDirectory).toBe(true)
    expect(filer.readFile('/d/d')?.toString()).toBe('inner')
  })

  it('POST without file name onto directory fails', async () => {
    await mkdir('/d')
    const response = await postMultipart('/d', Buffer.from('x'))

    expect(response.status).toBe(500)
    expect(filer.stat('/d')?.isDirectory).toBe(true)
  })

  it('write under a file returns 409', async () => {
    await put('/f', 'file')
    const response = await put('/f/child', 'x')

    expect(response.status).toBe(409)
    expect(filer.readFile('/f')?.toString()).toBe('file')
  })

  it('overwrite keeps crtime and inode', async () => {
    await put('/o.txt', 'first', 'mode=0644')
    const before = filer.stat('/o.txt')
    await new Promise((resolve) => setTimeout(resolve, 1100))
    await put('/o.txt', 'second version')
    const after = filer.stat('/o.txt')

    expect(after?.inode).toBe(before?.inode)
    expect(after?.crtimeMs).toBe(before?.crtimeMs)
    expect(after?.mtimeMs).toBeGreaterThan(before?.mtimeMs ?? Infinity)
    // A replacement takes its mode from the request again, 0660 without `mode`.
    expect(before?.mode).toBe(0o644)
    expect(after?.mode).toBe(0o660)
    expect(filer.readFile('/o.txt')?.toString()).toBe('second version')
  })

  it('Content-Type becomes the MIME type', async () => {
    await put('/typed', 'x', '', { 'Content-Type': 'text/plain' })
    await put('/untyped', 'x', '', { 'Content-Type': 'application/octet-stream' })

    expect(filer.stat('/typed')?.mime).toBe('text/plain')
    expect(filer.stat('/untyped')?.mime).toBe('')
    expect((await fetch(urlFor('/typed'))).headers.get('content-type')).toBe('text/plain')
    expect((await fetch(urlFor('/untyped'))).headers.get('content-type')).toBe('application/octet-stream')
  })

  it('Content-MD5 mismatch stores nothing', async () => {
    const response = await put('/m.txt', 'body', '', { 'Content-MD5': md5('other').toString('base64') })

    expect(response.status).toBe(400)
    expect(filer.exists('/m.txt')).toBe(false)
  })

  it('name over 255 bytes returns 414', async () => {
    const response = await put(`/${'n'.repeat(256)}`, 'x')

    expect(response.status).toBe(414)
    expect(filer.listDirectory('/')).toEqual([])
  })
})

describe('offset and append writes', () => {
  it('offset write fills the gap with zeros', async () => {
    await put('/g', 'abc')
    const response = await put('/g', 'XY', 'offset=6')

    expect(response.status).toBe(201)
    expect(await response.json()).toEqual({ name: 'g', size: 8 })
    expect(filer.readFile('/g')).toEqual(Buffer.from('abc\0\0\0XY'))
  })

  it('offset write inside keeps the size', async () => {
    await put('/g', 'abcdefgh')
    await put('/g', 'XY', 'offset=2')

    expect(filer.readFile('/g')?.toString()).toBe('abXYefgh')
    expect(filer.stat('/g')?.sizeBytes).toBe(8)
  })

  it('offset write keeps mode and MIME type', async () => {
    await put('/g', 'abcdefgh', 'mode=0600', { 'Content-Type': 'text/plain' })
    await put('/g', 'XY', 'offset=2&mode=0644', { 'Content-Type': 'image/png' })

    expect(filer.stat('/g')?.mode).toBe(0o600)
    expect(filer.stat('/g')?.mime).toBe('text/plain')
  })

  it('offset=0 replaces the whole file', async () => {
    await put('/g', 'abcdefgh')
    await put('/g', 'XY', 'offset=0')

    expect(filer.readFile('/g')?.toString()).toBe('XY')
  })

  it('empty body at offset replaces file', async () => {
    await put('/g', 'abcdefgh')
    const response = await put('/g', '', 'offset=4')

    expect(response.status).toBe(201)
    expect(filer.readFile('/g')).toEqual(Buffer.alloc(4))
  })

  it('offset write creates a missing file', async () => {
    await put('/new', 'Z', 'offset=3')

    expect(filer.readFile('/new')).toEqual(Buffer.from('\0\0\0Z'))
  })

  it('op=append appends at the stored size', async () => {
    await put('/log', 'one,')
    const response = await put('/log', 'two', 'op=append')

    expect(response.status).toBe(201)
    expect(await response.json()).toEqual({ name: 'log', size: 7 })
    expect(filer.readFile('/log')?.toString()).toBe('one,two')
  })

  it('op=append creates a missing file', async () => {
    await put('/fresh', 'start', 'op=append')

    expect(filer.readFile('/fresh')?.toString()).toBe('start')
  })

  it('offset with op=append returns 500', async () => {
    await put('/log', 'one')
    const response = await put('/log', 'x', 'op=append&offset=1')

    expect(response.status).toBe(500)
    expect(filer.readFile('/log')?.toString()).toBe('one')
  })

  it('invalid offset returns 500', async () => {
    for (const offset of ['-1', 'abc']) {
      const response = await put('/bad', 'x', `offset=${offset}`)
      expect(response.status).toBe(500)
    }
    expect(filer.exists('/bad')).toBe(false)
  })

  it('request log shows each small write', async () => {
    await put('/g', Buffer.alloc(1024))
    await put('/g', 'XY', 'offset=100')

    expect(filer.requests).toEqual([
      { method: 'PUT', path: '/g', query: {} },
      { method: 'PUT', path: '/g', query: { offset: '100' } }
    ])
  })
})

describe('directories', () => {
  it('POST to a trailing slash creates one', async () => {
    const response = await mkdir('/made')

    expect(response.status).toBe(201)
    expect(await response.json()).toEqual({ name: 'made' })
    expect(filer.stat('/made')?.isDirectory).toBe(true)
    expect(filer.stat('/made')?.mode).toBe(0o660)
  })

  it('mkdir takes the mode parameter', async () => {
    await mkdir('/made', 'mode=0755')

    expect(filer.stat('/made')?.mode).toBe(0o755)
  })

  it('mkdir of an existing path returns 409', async () => {
    await mkdir('/made')
    await put('/file', 'x')

    expect((await mkdir('/made')).status).toBe(409)
    expect((await mkdir('/file')).status).toBe(409)
    expect(filer.stat('/file')?.isDirectory).toBe(false)
  })

  it('mkdir under a file returns 409', async () => {
    await put('/file', 'x')

    expect((await mkdir('/file/sub')).status).toBe(409)
  })

  it('PUT never creates a bare directory', async () => {
    const response = await put('/newdir/', '')

    expect(response.status).toBe(201)
    expect(filer.stat('/newdir/newdir')?.isDirectory).toBe(false)
  })
})

describe('DELETE', () => {
  it('missing path returns 204', async () => {
    const response = await fetch(urlFor('/nothing/here'), { method: 'DELETE' })

    expect(response.status).toBe(204)
  })

  it('removes a file', async () => {
    await put('/f', 'x')
    const response = await fetch(urlFor('/f'), { method: 'DELETE' })

    expect(response.status).toBe(204)
    expect(filer.exists('/f')).toBe(false)
  })

  it('non-empty directory needs recursive=true', async () => {
    await put('/tree/a/b.txt', 'x')

    const rejected = await fetch(urlFor('/tree'), { method: 'DELETE' })
    expect(rejected.status).toBe(500)
    expect(((await rejected.json()) as { error: string }).error).toContain('non-empty')
    expect(filer.exists('/tree/a/b.txt')).toBe(true)

    const accepted = await fetch(urlFor('/tree', 'recursive=true'), { method: 'DELETE' })
    expect(accepted.status).toBe(204)
    expect(filer.exists('/tree')).toBe(false)
    expect(filer.exists('/tree/a')).toBe(false)
  })

  it('removes an empty directory', async () => {
    await mkdir('/empty')
    const response = await fetch(urlFor('/empty/'), { method: 'DELETE' })

    expect(response.status).toBe(204)
    expect(filer.exists('/empty')).toBe(false)
  })

  it('root is never deleted', async () => {
    await put('/keep', 'x')
    const response = await fetch(`${filer.url}/?recursive=true`, { method: 'DELETE' })

    expect(response.status).toBe(204)
    expect(filer.exists('/keep')).toBe(true)
  })
})

describe('GET and HEAD of files', () => {
  it('GET returns content and headers', async () => {
    await put('/dir/a b.html', 'hello')
    const response = await fetch(urlFor('/dir/a b.html'))
    const stat = filer.stat('/dir/a b.html')

    expect(response.status).toBe(200)
    expect(await response.text()).toBe('hello')
    expect(response.headers.get('content-length')).toBe('5')
    expect(response.headers.get('etag')).toBe(`"${md5('hello').toString('hex')}"`)
    expect(response.headers.get('last-modified')).toBe(new Date(stat?.mtimeMs ?? 0).toUTCString())
    expect(response.headers.get('accept-ranges')).toBe('bytes')
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(response.headers.get('content-disposition')).toBe('inline; filename="a+b.html"')
    expect(response.headers.get('server')).toMatch(/^SeaweedFS /)
  })

  it('MIME type falls back to the extension', async () => {
    await put('/data.json', '{}')

    expect((await fetch(urlFor('/data.json'))).headers.get('content-type')).toBe('application/json')
  })

  it('missing file returns 404 without body', async () => {
    const response = await fetch(urlFor('/missing'))

    expect(response.status).toBe(404)
    expect(await response.text()).toBe('')
  })

  it('file with trailing slash returns 404', async () => {
    await put('/f', 'x')

    expect((await fetch(`${urlFor('/f')}/`)).status).toBe(404)
  })

  it('HEAD returns headers only', async () => {
    await put('/h', 'twelve bytes')
    const response = await fetch(urlFor('/h'), { method: 'HEAD' })

    expect(response.status).toBe(200)
    expect(response.headers.get('content-length')).toBe('12')
    expect(response.headers.get('etag')).toBe(`"${md5('twelve bytes').toString('hex')}"`)
    expect(await response.text()).toBe('')
    expect((await fetch(urlFor('/nope'), { method: 'HEAD' })).status).toBe(404)
  })

  it('empty file returns 200 with empty body', async () => {
    await put('/zero', '')
    const response = await fetch(urlFor('/zero'))

    expect(response.status).toBe(200)
    expect(await response.text()).toBe('')
    expect(response.headers.get('etag')).toBe(`"${md5('').toString('hex')}"`)
  })

  it('single ranges returns 206', async () => {
    await put('/r', '0123456789')
    const cases: Array<[string, string, string]> = [
      ['bytes=2-4', '234', 'bytes 2-4/10'],
      ['bytes=7-', '789', 'bytes 7-9/10'],
      ['bytes=-3', '789', 'bytes 7-9/10'],
      ['bytes=8-100', '89', 'bytes 8-9/10']
    ]

    for (const [range, body, contentRange] of cases) {
      const response = await fetch(urlFor('/r'), { headers: { Range: range } })
      expect(response.status, range).toBe(206)
      expect(await response.text(), range).toBe(body)
      expect(response.headers.get('content-range'), range).toBe(contentRange)
      expect(response.headers.get('content-length'), range).toBe(String(body.length))
    }
  })

  it('unsatisfiable ranges returns 416', async () => {
    await put('/r', '0123456789')

    for (const range of ['bytes=10-', 'bytes=20-30', 'items=0-1', 'bytes=5-2']) {
      const response = await fetch(urlFor('/r'), { headers: { Range: range } })
      expect(response.status, range).toBe(416)
    }
  })

  it('several ranges return multipart/byteranges', async () => {
    await put('/r', '0123456789')
    const response = await fetch(urlFor('/r'), { headers: { Range: 'bytes=0-1,5-6' } })
    const body = await response.text()

    expect(response.status).toBe(206)
    expect(response.headers.get('content-type')).toMatch(/^multipart\/byteranges; boundary=/)
    expect(body).toContain('Content-Range: bytes 0-1/10\r\n')
    expect(body).toContain('\r\n\r\n01\r\n')
    expect(body).toContain('Content-Range: bytes 5-6/10\r\n')
    expect(body).toContain('\r\n\r\n56\r\n')
  })

  it('If-None-Match with the ETag returns 304', async () => {
    await put('/c', 'cached')
    const eTag = (await fetch(urlFor('/c'), { method: 'HEAD' })).headers.get('etag') ?? ''
    const response = await fetch(urlFor('/c'), { headers: { 'If-None-Match': eTag } })

    expect(response.status).toBe(304)
  })

  it('ETag after append combines chunk digests', async () => {
    await put('/e', 'hello')
    await put('/e', ' world', 'op=append')
    const expected = `${createHash('md5').update(Buffer.concat([md5('hello'), md5(' world')])).digest('hex')}-2`

    expect((await fetch(urlFor('/e'))).headers.get('etag')).toBe(`"${expected}"`)
  })
})

describe('metadata=true', () => {
  it('returns the entry as JSON', async () => {
    await put('/meta/f.bin', 'abc')
    const entry = await getMetadata('/meta/f.bin')

    expect(entry.FullPath).toBe('/meta/f.bin')
    expect(entry.Mtime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    expect(entry.Crtime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    expect(entry.Mode).toBe(0o660)
    expect(entry.FileSize).toBe(3)
    expect(entry.Md5).toBe(md5('abc').toString('base64'))
    expect(entry.Mime).toBe('')
    expect(entry.Inode).toBeGreaterThan(1)
    expect(entry.chunks).toHaveLength(1)
    expect((entry.chunks as Array<Record<string, unknown>>)[0].size).toBe(3)
  })

  it('marks a directory with the mode bit', async () => {
    await mkdir('/meta')
    const entry = await getMetadata('/meta')

    expect(entry.Mode).toBe(MODE_DIR + 0o660)
    expect(entry.FileSize).toBe(0)
    expect(entry.chunks).toBeUndefined()
  })

  it('large uploads split into 4 MiB chunks', async () => {
    const content = Buffer.alloc(9 * 1024 * 1024, 7)
    await put('/big', content)
    const chunks = (await getMetadata('/big')).chunks as Array<Record<string, unknown>>

    expect(chunks.map((chunk) => chunk.offset ?? 0)).toEqual([0, 4 * 1024 * 1024, 8 * 1024 * 1024])
    expect((await fetch(urlFor('/big'), { method: 'HEAD' })).headers.get('etag')).toBe(`"${md5(content).toString('hex')}"`)
  })

  it('inode survives a rename', async () => {
    await put('/i1', 'x')
    const before = (await getMetadata('/i1')).Inode
    await fetch(urlFor('/i2', 'mv.from=%2Fi1'), { method: 'POST' })

    expect((await getMetadata('/i2')).Inode).toBe(before)
  })
})

describe('directory listing', () => {
  it('JSON listing has the filer shape', async () => {
    await put('/l/f.txt', 'abc')
    await mkdir('/l/sub')
    const listing = await list('/l')

    expect(Object.keys(listing)).toEqual(['Version', 'Path', 'Entries', 'Limit', 'LastFileName', 'ShouldDisplayLoadMore', 'EmptyFolder'])
    expect(listing.Path).toBe('/l')
    expect(listing.Limit).toBe(100000)
    expect(listing.LastFileName).toBe('sub')
    expect(listing.ShouldDisplayLoadMore).toBe(false)
    expect(listing.EmptyFolder).toBe(false)
    expect(listing.Entries?.map((entry) => entry.FullPath)).toEqual(['/l/f.txt', '/l/sub'])
    expect(listing.Entries?.[0].FileSize).toBe(3)
    expect(listing.Entries?.[0].Mode).toBe(0o660)
    expect(listing.Entries?.[1].Mode).toBe(MODE_DIR + 0o660)
  })

  it('sorts names by UTF-8 bytes', async () => {
    // U+1F600 comes before U+FB01 in UTF-16 code units but after it in UTF-8 bytes.
    for (const name of ['b', '\u{1F600}', 'é', 'B', '\uFB01', 'a', '_', 'Z']) {
      await put(`/s/${name}`, 'x')
    }
    const expected = ['B', 'Z', '_', 'a', 'b', 'é', '\uFB01', '\u{1F600}']
    const listing = await list('/s')

    expect(listing.Entries?.map((entry) => entry.FullPath)).toEqual(expected.map((name) => `/s/${name}`))
    expect(filer.listDirectory('/s')).toEqual(expected)
  })

  it('pages with limit and lastFileName', async () => {
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      await put(`/p/${name}`, 'x')
    }

    const first = await list('/p', 'limit=2')
    expect(first.Entries?.map((entry) => entry.FullPath)).toEqual(['/p/a', '/p/b'])
    expect(first.ShouldDisplayLoadMore).toBe(true)
    expect(first.LastFileName).toBe('b')

    const second = await list('/p', 'limit=2&lastFileName=b')
    expect(second.Entries?.map((entry) => entry.FullPath)).toEqual(['/p/c', '/p/d'])
    expect(second.ShouldDisplayLoadMore).toBe(true)

    const last = await list('/p', 'limit=2&lastFileName=d')
    expect(last.Entries?.map((entry) => entry.FullPath)).toEqual(['/p/e'])
    expect(last.ShouldDisplayLoadMore).toBe(false)
    expect(last.LastFileName).toBe('e')
  })

  it('lastFileName need not exist', async () => {
    for (const name of ['a', 'c']) {
      await put(`/p/${name}`, 'x')
    }

    expect((await list('/p', 'lastFileName=b')).Entries?.map((entry) => entry.FullPath)).toEqual(['/p/c'])
  })

  it('empty page lists Entries as null', async () => {
    await mkdir('/void')
    const listing = await list('/void')

    expect(listing.Entries).toBeNull()
    expect(listing.EmptyFolder).toBe(true)
    expect(listing.LastFileName).toBe('')
  })

  it('limit=0 flags more entries', async () => {
    await put('/p/a', 'x')
    const listing = await list('/p', 'limit=0')

    expect(listing.Entries).toEqual([])
    expect(listing.ShouldDisplayLoadMore).toBe(true)
  })

  it('root listing has an empty Path', async () => {
    await put('/top', 'x')
    const listing = await list('/')

    expect(listing.Path).toBe('')
    expect(listing.Entries?.map((entry) => entry.FullPath)).toEqual(['/top'])
  })

  it('listing entries carry no chunks', async () => {
    await put('/l/f', 'abc')

    expect((await list('/l')).Entries?.[0].chunks).toBeUndefined()
  })

  it('missing directory returns 404', async () => {
    const response = await fetch(`${urlFor('/absent')}/`, { headers: { Accept: 'application/json' } })

    expect(response.status).toBe(404)
  })

  it('other Accept values give HTML', async () => {
    await put('/l/f', 'x')

    for (const accept of ['*/*', 'application/json, text/plain']) {
      const response = await fetch(`${urlFor('/l')}/`, { headers: { Accept: accept } })
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    }
  })
})

describe('rename with mv.from', () => {
  async function move(from: string, to: string, method = 'POST'): Promise<Response> {
    const destination = to.endsWith('/') && to !== '/' ? `${urlFor(to.slice(0, -1))}/` : urlFor(to)
    return fetch(`${destination}?mv.from=${encodeURIComponent(from)}`, { method })
  }

  it('renames a file keeping its attributes', async () => {
    await put('/a.txt', 'content', 'mode=0640')
    const before = filer.stat('/a.txt')
    const response = await move('/a.txt', '/b.txt')

    expect(response.status).toBe(204)
    expect(filer.exists('/a.txt')).toBe(false)
    expect(filer.readFile('/b.txt')?.toString()).toBe('content')
    expect(filer.stat('/b.txt')).toEqual(before)
  })

  it('replaces an existing file', async () => {
    await put('/a', 'new')
    await put('/b', 'old')

    expect((await move('/a', '/b')).status).toBe(204)
    expect(filer.readFile('/b')?.toString()).toBe('new')
    expect(filer.exists('/a')).toBe(false)
  })

  it('replaces an empty directory', async () => {
    await put('/src/inner', 'x')
    await mkdir('/dst')

    expect((await move('/src', '/dst')).status).toBe(204)
    expect(filer.readFile('/dst/inner')?.toString()).toBe('x')
    expect(filer.exists('/src')).toBe(false)
  })

  it('rejects a non-empty directory target', async () => {
    await put('/src/inner', 'x')
    await put('/dst/other', 'y')
    const response = await move('/src', '/dst')

    expect(response.status).toBe(400)
    expect(filer.exists('/src/inner')).toBe(true)
    expect(filer.exists('/dst/other')).toBe(true)
  })

  it('rejects a file onto a directory', async () => {
    await put('/f', 'x')
    await mkdir('/d')

    expect((await move('/f', '/d')).status).toBe(400)
    expect(filer.exists('/f')).toBe(true)
  })

  it('rejects a directory onto a file', async () => {
    await mkdir('/d')
    await put('/f', 'x')

    expect((await move('/d', '/f')).status).toBe(400)
    expect(filer.stat('/f')?.isDirectory).toBe(false)
  })

  it('rejects a move into its own subtree', async () => {
    await put('/a/x', 'x')

    expect((await move('/a', '/a/b/a')).status).toBe(400)
    expect(filer.exists('/a/x')).toBe(true)
  })

  it('rejects a destination extending the name', async () => {
    // CanRename compares raw strings: "/ab" starts with "/a".
    await put('/a', 'x')

    expect((await move('/a', '/ab/x')).status).toBe(400)
    expect(filer.exists('/a')).toBe(true)
  })

  it('missing source returns 400', async () => {
    const response = await move('/nothing', '/b')

    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: string }).error).toContain('/nothing')
  })

  it('trailing slash keeps the source name', async () => {
    await put('/f', 'x')
    await mkdir('/d')

    expect((await move('/f', '/d/')).status).toBe(204)
    expect(filer.readFile('/d/f')?.toString()).toBe('x')
  })

  it('creates missing destination parents', async () => {
    await put('/f', 'x')

    expect((await move('/f', '/new/deep/g')).status).toBe(204)
    expect(filer.stat('/new/deep')?.isDirectory).toBe(true)
    expect(filer.readFile('/new/deep/g')?.toString()).toBe('x')
  })

  it('moves a directory with its children', async () => {
    await put('/t/a/1', 'one')
    await put('/t/b', 'two')

    expect((await move('/t', '/u')).status).toBe(204)
    expect(filer.readFile('/u/a/1')?.toString()).toBe('one')
    expect(filer.readFile('/u/b')?.toString()).toBe('two')
    expect(filer.exists('/t')).toBe(false)
    expect(filer.listDirectory('/')).toEqual(['u'])
  })

  it('PUT renames as well', async () => {
    await put('/f', 'x')

    expect((await move('/f', '/g', 'PUT')).status).toBe(204)
    expect(filer.exists('/g')).toBe(true)
  })

  it('plus in mv.from means space', async () => {
    await put('/a+b', 'x')

    expect((await fetch(`${urlFor('/c')}?mv.from=/a+b`, { method: 'POST' })).status).toBe(400)
    expect((await move('/a+b', '/c')).status).toBe(204)
    expect(filer.exists('/c')).toBe(true)
  })
})

describe('path encoding', () => {
  it('encoded special names are ordinary files', async () => {
    const names = ['a?op=append', 'x#y', 'sp ace', 'ünïcode', '%&', 'a+b', 'semi;colon', "q'(*)!"]
    for (const name of names) {
      expect((await put(`/n/${name}`, `content of ${name}`)).status, name).toBe(201)
    }

    for (const name of names) {
      expect(filer.readFile(`/n/${name}`)?.toString(), name).toBe(`content of ${name}`)
      expect(await (await fetch(urlFor(`/n/${name}`))).text(), name).toBe(`content of ${name}`)
    }
    expect([...(filer.listDirectory('/n') ?? [])].sort()).toEqual([...names].sort())
    expect(filer.requests[0]).toEqual({ method: 'PUT', path: '/n/a?op=append', query: {} })
  })

  it('encoded slash separates segments', async () => {
    await fetch(`${filer.url}/a%2Fb`, { method: 'PUT', body: 'x' })

    expect(filer.readFile('/a/b')?.toString()).toBe('x')
  })

  it('malformed escape returns 400', async () => {
    const response = await rawRequest('GET', '/bad%zz')

    expect(response.status).toBe(400)
  })

  it('literal dot segments redirect', async () => {
    const response = await rawRequest('GET', '/a/./b?x=1')

    expect(response.status).toBe(301)
    expect(response.headers.location).toBe('/a/b?x=1')
    expect((await rawRequest('PUT', '/a/../b')).status).toBe(301)
  })

  it('encoded dot segments are rejected', async () => {
    const response = await rawRequest('PUT', '/a/%2E%2E')

    expect(response.status).toBe(400)
    expect(filer.listDirectory('/')).toEqual([])
  })
})

describe('reserved paths', () => {
  it('/healthz returns 200, stores nothing', async () => {
    const response = await put('/healthz', 'x')

    expect(response.status).toBe(200)
    expect(filer.exists('/healthz')).toBe(false)
    expect((await put('/dir/healthz', 'x')).status).toBe(201)
  })
})

describe('faults', () => {
  it('setDown resets connections', async () => {
    await put('/f', 'x')
    filer.setDown(true)

    await expect(fetch(urlFor('/f'))).rejects.toThrow()

    filer.setDown(false)
    expect((await fetch(urlFor('/f'))).status).toBe(200)
  })

  it('setDown can return 503', async () => {
    await restart({ downMode: 'unavailable' })
    filer.setDown(true)

    expect((await put('/f', 'x')).status).toBe(503)
    expect(filer.exists('/f')).toBe(false)
  })

  it('delayMs delays responses', async () => {
    filer.delayMs = 150
    const started = Date.now()
    await fetch(urlFor('/missing'))

    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  })

  it('fault hook returns a status', async () => {
    let failures = 1
    await restart({ fault: (request) => (request.method === 'PUT' && failures-- > 0 ? { action: 'status', status: 500 } : undefined) })

    expect((await put('/f', 'x')).status).toBe(500)
    expect(filer.exists('/f')).toBe(false)
    expect((await put('/f', 'x')).status).toBe(201)
    expect(filer.requests).toHaveLength(2)
  })

  it('fault hook resets a connection', async () => {
    await restart({ fault: () => ({ action: 'reset' }) })

    await expect(fetch(urlFor('/f'))).rejects.toThrow()
  })

  it('hanging request times out', async () => {
    await restart({ fault: () => ({ action: 'hang' }) })

    await expect(fetch(urlFor('/f'), { signal: AbortSignal.timeout(200) })).rejects.toThrow()
  })
})

describe('direct access', () => {
  it('reports files and directories', async () => {
    await put('/d/f', 'x')

    expect(filer.exists('/')).toBe(true)
    expect(filer.exists('/d/')).toBe(true)
    expect(filer.readFile('/d')).toBeUndefined()
    expect(filer.readFile('/absent')).toBeUndefined()
    expect(filer.listDirectory('/d')).toEqual(['f'])
    expect(filer.listDirectory('/d/f')).toBeUndefined()
    expect(filer.stat('/absent')).toBeUndefined()
  })
})
