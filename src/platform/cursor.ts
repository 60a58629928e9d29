import { createHash } from 'node:crypto'
import { AppError } from './errors.ts'

/**
 * Opaque keyset cursors: the position of the last item, bound to the filters of the search so that a cursor
 * from another search is refused rather than silently returning the wrong page.
 */
const fingerprint = (filter: unknown) => createHash('sha256').update(JSON.stringify(filter ?? null)).digest('base64url').slice(0, 10)

export function encodeCursor(position: unknown, filter?: unknown): string {
  return Buffer.from(JSON.stringify({ p: position, f: fingerprint(filter) })).toString('base64url')
}

export function decodeCursor<T>(cursor: string, filter?: unknown): T {
  try {
    const { p, f } = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (f !== fingerprint(filter) || p === null || typeof p !== 'object') throw new Error('mismatch')
    return p as T
  } catch {
    throw new AppError('INVALID_CURSOR', {}, { errors: [{ field: 'querystring.cursor', code: 'cursor', message: 'curseur invalide' }] })
  }
}
