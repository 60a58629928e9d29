import dns from 'node:dns'
import { BlockList, isIP, isIPv4, type LookupFunction } from 'node:net'
import type { Text } from '../i18n.ts'

/**
 * Webhook URLs are chosen by our clients, and the server calls them: without care, anyone could make it call
 * its own loopback, the private network or the cloud metadata service (SSRF). The URL is checked when it is
 * registered and, because a name may resolve elsewhere by the time we call it (DNS rebinding), again on the
 * address actually connected to: the HTTP request resolves names through guardedLookup().
 *
 * No library does this for node:http on Node 20 without pulling in an HTTP client of its own; node's BlockList
 * holds the ranges (it also matches IPv4-mapped IPv6 addresses against the IPv4 ranges).
 */
const blocked = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6')
}

/** The 8 hextets of an IPv6 address (with an optional dotted IPv4 tail), or null. */
function hextets(address: string): number[] | null {
  let a = address.split('%')[0]!.toLowerCase()
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (v4) {
    const parts = v4[1]!.split('.').map(Number)
    a = a.slice(0, -v4[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`
  }
  const [head = '', tail] = a.split('::')
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const zeros = a.includes('::') ? 8 - h.length - t.length : 0
  const all = [...h, ...Array(zeros).fill('0'), ...t].map((x) => parseInt(x, 16))
  return all.length === 8 && all.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? all : null
}

const v4of = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`

/** IPv4 addresses carried inside an IPv6 one: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64, 6to4. */
function embeddedIPv4(address: string): string | null {
  const h = hextets(address)
  if (!h) return null
  const zero = (from: number, to: number) => h.slice(from, to).every((x) => x === 0)
  if (zero(0, 5) && (h[5] === 0xffff || h[5] === 0)) return v4of(h[6]!, h[7]!)
  if (h[0] === 0x64 && h[1] === 0xff9b && zero(2, 6)) return v4of(h[6]!, h[7]!)
  if (h[0] === 0x2002) return v4of(h[1]!, h[2]!)
  return null
}

/** Whether the server must never connect to this IP address (loopback, private, link-local, reserved…). */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 4) return blocked.check(address, 'ipv4')
  if (family !== 6) return true // not an address: refuse rather than guess
  if (blocked.check(address, 'ipv6')) return true
  const v4 = embeddedIPv4(address)
  return v4 !== null && isIPv4(v4) && blocked.check(v4, 'ipv4')
}

export class ForbiddenAddressError extends Error {
  readonly code = 'WEBHOOK_FORBIDDEN_ADDRESS'
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(host === address ? `forbidden address ${address}` : `forbidden address: ${host} resolves to ${address}`)
  }
}

/**
 * A `lookup` for node:http(s) requests that refuses a name when any of its addresses is forbidden: the check
 * applies to the address actually connected to, whatever the name resolved to at registration.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0)
    const bad = addresses.find((a) => isForbiddenAddress(a.address))
    if (bad) return callback(new ForbiddenAddressError(hostname, bad.address), '', 0)
    if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0)
    if (options.all) return callback(null, addresses)
    callback(null, addresses[0]!.address, addresses[0]!.family)
  })
}

/** The host of a URL as node:net wants it (IPv6 without brackets). */
export const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1')

const LOOKUP_TIMEOUT_MS = 5000

async function resolveAll(host: string): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined
  try {
    const addresses = await Promise.race([
      dns.promises.lookup(host, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error('DNS timeout'), { code: 'ETIMEOUT' })), LOOKUP_TIMEOUT_MS)
      }),
    ])
    return addresses.map((a) => a.address)
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Why a webhook URL is refused at registration, or null when it is acceptable. With allowPrivate (development
 * only), http and private addresses are accepted and names are not resolved.
 */
export async function webhookUrlProblem(raw: string, allowPrivate: boolean): Promise<Text | null> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return { fr: 'URL invalide (attendu : https://hôte/chemin)', en: 'invalid URL (expected: https://host/path)' }
  }
  const schemes = allowPrivate ? ['https:', 'http:'] : ['https:']
  if (!schemes.includes(url.protocol)) {
    return allowPrivate
      ? { fr: 'seuls https et http sont admis', en: 'only https and http are allowed' }
      : { fr: 'seul https est admis', en: 'only https is allowed' }
  }
  if (url.username || url.password) {
    return { fr: 'l’URL ne doit pas contenir d’identifiants (utilisateur:mot-de-passe@)', en: 'the URL must not carry credentials (user:password@)' }
  }
  if (allowPrivate) return null
  const host = hostOf(url)
  if (isIP(host)) {
    return isForbiddenAddress(host)
      ? { fr: `l’adresse ${host} est privée, de bouclage, lien-local ou réservée`, en: `address ${host} is private, loopback, link-local or reserved` }
      : null
  }
  let addresses: string[]
  try {
    addresses = await resolveAll(host)
  } catch {
    return { fr: `le nom ${host} ne se résout pas (DNS)`, en: `host ${host} does not resolve (DNS)` }
  }
  const bad = addresses.find(isForbiddenAddress)
  if (bad) {
    return {
      fr: `${host} se résout en ${bad}, adresse privée, de bouclage, lien-local ou réservée`,
      en: `${host} resolves to ${bad}, a private, loopback, link-local or reserved address`,
    }
  }
  if (addresses.length === 0) return { fr: `le nom ${host} ne se résout pas (DNS)`, en: `host ${host} does not resolve (DNS)` }
  return null
}
