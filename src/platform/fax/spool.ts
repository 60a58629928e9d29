import { randomUUID } from 'node:crypto'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { FaxGateway } from './gateway.ts'

export interface SpoolFaxGatewayOptions {
  /** Clock for the sidecar's `at` (the app's clock, so that tests and the job agree). */
  now?: () => Date
}

/** What the sidecar `<reference>.json` holds, next to `<reference>.pdf`. */
export interface SpoolSidecar {
  id: string
  to: string
  reference: string
  at: string
  bytes: number
}

/**
 * The default fax gateway: "sends" a fax by writing `<spoolDir>/<reference>.pdf` and a JSON sidecar
 * `<reference>.json` (to, reference, at), so that a development instance shows what would have been faxed and a
 * spool-based fax server could pick them up. Each file is written under a temporary name and renamed, so that a
 * reader never sees half a PDF; the sidecar is written last and marks the fax as complete. Sending the same
 * reference again (a retry after a crash) replaces the files.
 */
export class SpoolFaxGateway implements FaxGateway {
  readonly dir: string
  private readonly now: () => Date

  constructor(spoolDir: string, opts: SpoolFaxGatewayOptions = {}) {
    this.dir = resolve(spoolDir)
    this.now = opts.now ?? (() => new Date())
  }

  async send(fax: { to: string; pdf: Buffer; reference: string }): Promise<{ id: string }> {
    // The reference becomes a file name: refuse anything that could leave the folder or be ambiguous.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(fax.reference) || fax.reference.includes('..')) {
      throw new Error(`fax reference not usable as a file name: ${JSON.stringify(fax.reference)}`)
    }
    if (!fax.to.trim()) throw new Error('fax number missing')
    await mkdir(this.dir, { recursive: true })
    const id = `spool-${randomUUID()}`
    const sidecar: SpoolSidecar = { id, to: fax.to, reference: fax.reference, at: this.now().toISOString(), bytes: fax.pdf.length }
    await this.write(`${fax.reference}.pdf`, fax.pdf)
    await this.write(`${fax.reference}.json`, `${JSON.stringify(sidecar, null, 2)}\n`)
    return { id }
  }

  private async write(name: string, data: Buffer | string) {
    const tmp = join(this.dir, `.${name}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`)
    await writeFile(tmp, data)
    await rename(tmp, join(this.dir, name))
  }
}
