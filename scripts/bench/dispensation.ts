// The dispensation check scenario of `npm run bench`: a set of blocked batches like a busy year of recalls,
// and a dispensation of five boxes, two of them blocked (DataMatrix and product + batch forms mixed).
import pg from 'pg'
import { insertPharmacies } from './burst.ts'

const BLOCKED_BATCHES = 2_000
const GS = '\u001d'

/**
 * Writes the blocked batches straight into the service's database and wakes its instances (they reload on
 * the notification), as a committed broadcast would.
 */
export async function seedBlockedBatches(databaseUrl: string) {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query('begin')
    await client.query(
      `insert into dispensation_blocks (cip13, batch, recall_id, reference, version, lab_id, expiry, message_fr, message_en, state, since)
       select '3400949497294', 'BENCH' || g, 'bench-recall-' || (g % 40), 'R-2026-' || lpad((g % 40)::text, 4, '0'), 1, '412345670', '2027-12-31',
              'Lot rappelé : ne pas délivrer, mettre la boîte en quarantaine et la retourner au laboratoire.', null, 'active', now()
       from generate_series(1, $1::int) g on conflict do nothing`,
      [BLOCKED_BATCHES],
    )
    const { rows } = await client.query('update dispensation_block_generation set generation = generation + 1 where id = 1 returning generation')
    await client.query('select pg_notify($1, $2)', ['dp_dispensation_blocks', String(rows[0].generation)])
    await client.query('commit')
  } finally {
    await client.end()
  }
  // Let every instance reload before measuring.
  await new Promise((r) => setTimeout(r, 500))
}

export const dispensationBody = JSON.stringify({
  boxes: [
    { dataMatrix: `]d2010340094949729421BENCHSER0001${GS}10BENCH17${GS}17271231` }, // blocked
    { dataMatrix: `]d2010340094949729421BENCHSER0002${GS}10FREE2026${GS}17271231` },
    { dataMatrix: `]d2010340093612814921BENCHSER0003${GS}10B2026-17${GS}17280630` },
    { product: '3400949497294', batch: 'bench1999' }, // blocked (typed in lower case)
    { product: '3400936128149', batch: 'LOT-X' },
  ],
})

/**
 * A broadcast recall addressed to every pharmacy, made through the API as a lab and ANSM would: the target of
 * the acknowledgement scenario. Returns its id.
 */
export const ACK_PHARMACIES = Array.from({ length: 1000 }, (_, i) => `99${String(i).padStart(7, '0')}`)

export async function broadcastBenchRecall(url: string, token: (role: 'lab' | 'ansm', org: string) => string, databaseUrl?: string): Promise<string> {
  // A thousand more pharmacies (on PostgreSQL), so that acknowledgements do not all queue on a few rows.
  if (databaseUrl) await insertPharmacies(databaseUrl, ACK_PHARMACIES)
  const call = async (method: string, path: string, role: 'lab' | 'ansm', org: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token(role, org)}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
    return res.json() as Promise<{ id: string }>
  }
  const { id } = await call('POST', '/v1/recalls', 'lab', '412345670', {
    title: 'Rappel de lot (bench)',
    reason: 'Défaut de fabrication',
    message: 'Mettez en quarantaine les boîtes du lot et retournez-les.',
    action: 'quarantine_return',
    recipients: { categories: ['pharmacy'] },
    contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
    batches: [{ cip13: '3400936128149', batch: 'BENCH-ACK', expiry: '2027-12-31' }],
    blockDispensation: true,
  })
  await call('POST', `/v1/recalls/${id}/submit`, 'lab', '412345670')
  await call('POST', `/v1/recalls/${id}/approve`, 'ansm', 'ANSM')
  return id
}
