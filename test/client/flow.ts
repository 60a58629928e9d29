// A small program written as an LGO vendor would, against the types openapi-typescript makes from the contract
// (generate.ts) and the openapi-fetch client: the counter flow, from a product lookup to a signed e-prescription
// receipt. It must type-check (no cast on what the service answers) and run against the service.
import { randomUUID } from 'node:crypto'
import createClient from 'openapi-fetch'
import type { components, paths } from './generated/portail-dp.ts'

export type FeedEvent = components['schemas']['FeedEvent']
type Token = (role: 'pharmacy' | 'lab' | 'ansm' | 'prescriber', org: string) => string

export async function counterFlow(baseUrl: string, token: Token, step: (name: string) => void): Promise<void> {
  const client = (role: Parameters<Token>[0], org: string) => createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token(role, org)}` } })
  const pharmacy = client('pharmacy', '750100010')
  const lab = client('lab', '412345670')
  const ansm = client('ansm', 'ANSM')
  const prescriber = client('prescriber', '10001234565')
  const must = <T>(r: { data?: T; error?: unknown; response: Response }, what: string): T => {
    if (r.data === undefined) throw new Error(`${what}: HTTP ${r.response.status} ${JSON.stringify(r.error)}`)
    return r.data
  }
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(what)
    step(what)
  }

  // The product, then a shortage signal on it.
  const amox = '3400936128149'
  const product = must(await pharmacy.GET('/v1/products/{code}', { params: { path: { code: amox } } }), 'product')
  check(product.cip13 === amox, 'product looked up')
  const signal = must(
    await pharmacy.POST('/v1/shortage-signals', { body: { code: amox, wholesaler: 'OCP Répartition', unavailableSince: new Date(Date.now() - 4 * 86_400_000).toISOString().slice(0, 10) } }),
    'shortage signal',
  )
  check(signal.status === 'open', 'shortage signalled')
  const start = must(await pharmacy.GET('/v1/feed', {}), 'feed').nextAfter

  // A recall: drafted by the lab, approved by ANSM, broadcast.
  const batch = `L${Date.now().toString(36).toUpperCase().slice(-6)}`
  const recall = must(
    await lab.POST('/v1/recalls', {
      params: { header: { 'idempotency-key': randomUUID() } },
      body: {
        title: 'Rappel de lots d’Amoxicilline Biogaran 500 mg',
        reason: 'Défaut d’étanchéité de l’opercule',
        message: 'Mettez en quarantaine les boîtes des lots concernés et retournez-les à votre grossiste.',
        action: 'quarantine_return',
        recipients: { categories: ['pharmacy'], regions: ['11'] },
        contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
        batches: [{ cip13: amox, batch, expiry: '2027-06-30' }],
        blockDispensation: true,
      },
    }),
    'recall',
  )
  must(await lab.POST('/v1/recalls/{id}/submit', { params: { path: { id: recall.id } }, body: {} }), 'submit')
  const approved = must(await ansm.POST('/v1/recalls/{id}/approve', { params: { path: { id: recall.id } }, body: {} }), 'approve')
  check(approved.status === 'broadcast', 'recall approved by ANSM and broadcast')

  // The pharmacy reads it on its feed, typed by its `type`.
  let broadcast: Extract<FeedEvent, { type: 'recall.broadcast' }> | undefined
  for (let i = 0; i < 10 && !broadcast; i++) {
    const page = must(await pharmacy.GET('/v1/feed', { params: { query: { after: start, wait: 2 } } }), 'feed')
    for (const event of page.items) if (event.type === 'recall.broadcast' && event.payload.id === recall.id) broadcast = event
  }
  check(broadcast?.payload.batches[0]?.batch === batch && broadcast.payload.blockDispensation, 'recall.broadcast read on the feed, payload typed')

  // Before dispensing: the batch is blocked; the pharmacy acknowledges.
  const blocked = must(await pharmacy.POST('/v1/dispensation-checks', { body: { boxes: [{ product: amox, batch }] } }), 'check')
  check(blocked.blocked && blocked.boxes[0]?.status === 'blocked', 'dispensation check blocked')
  const ack = must(
    await pharmacy.PUT('/v1/recalls/{id}/acknowledgement', { params: { path: { id: recall.id } }, body: { status: 'done', quarantined: 2, returned: 0, destroyed: 0 } }),
    'acknowledgement',
  )
  check(ack.status === 'done' && ack.quarantined === 2, 'recall acknowledged')

  // Serialization: the lab uploads serials (text, one per line), the pharmacy verifies and decommissions a box.
  const cip = '3400949497294'
  const lot = `S${Date.now().toString(36).toUpperCase().slice(-6)}`
  const serials = [`${Date.now()}1`, `${Date.now()}2`]
  const upload = must(
    await lab.POST('/v1/serialization/products/{code}/batches/{batch}/packs', {
      params: { path: { code: cip, batch: lot }, query: { expiry: '2027-12-31' } },
      body: serials.join('\n'),
      bodySerializer: (body: string) => body,
      headers: { 'content-type': 'text/plain' },
    }),
    'upload',
  )
  check(upload.created === 2, 'packs uploaded as text')
  const dataMatrix = `]d201${'0' + cip}21${serials[0]}\u001d10${lot}\u001d17271231`
  const verified = must(await pharmacy.POST('/v1/serialization/packs/verify', { body: { dataMatrix } }), 'verify')
  check(verified.code === 'PACK_ACTIVE', 'pack verified')
  const supplied = must(await pharmacy.POST('/v1/serialization/packs/state', { body: { action: 'supply', dataMatrix } }), 'decommission')
  check(supplied.code === 'STATE_CHANGED', 'pack decommissioned')

  // E-prescription: issued by the prescriber, taken with its QR code, dispensed, closed with a signed receipt.
  const issued = must(
    await prescriber.POST('/v1/eprescriptions', {
      body: {
        patient: { familyName: 'DUPONT', givenName: 'Marie', birthDate: '1984-05-17' },
        lines: [{ cip13: cip, dosage: '1 comprimé le soir', quantity: 1, durationDays: 30 }],
      },
    }),
    'issue',
  )
  const taken = must(await pharmacy.POST('/v1/eprescriptions/accept', { body: { qr: issued.qrPayload } }), 'accept')
  check(taken.prescription.id === issued.id, 'e-prescription taken with its QR code')
  const secret = { 'x-eprescription-secret': taken.secret }
  must(
    await pharmacy.PUT('/v1/eprescriptions/{id}/dispensation/lines/{line}', {
      params: { path: { id: issued.id, line: 1 }, header: secret },
      body: { outcome: 'delivered', cip13: cip, quantity: 1 },
    }),
    'line',
  )
  const closed = must(await pharmacy.POST('/v1/eprescriptions/{id}/close', { params: { path: { id: issued.id }, header: secret } }), 'close')
  const receipt = must(
    await pharmacy.GET('/v1/eprescriptions/{id}/dispensations/{seq}/receipt', { params: { path: { id: issued.id, seq: closed.claims.dispensation } } }),
    'receipt',
  )
  check(receipt.jws === closed.jws && receipt.jws.split('.').length === 3, 'dispensed, signed receipt read back')
}
