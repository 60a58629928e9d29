// The schemas of the pack calls (verify, change state, one or in bulk; the return codes) and of the lab's side
// (uploads, batches and their figures, statuses).
import { type TSchema, Type } from 'typebox'
import { component, Page } from '../../platform/schemas.ts'
import { ACTIONS, BATCH_STATUSES, PACK_STATES } from '../db.ts'
import { alertOn } from '../rules/alerts.ts'
import { RETURN_CODE_NAMES, RETURN_CODES } from '../rules/codes.ts'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const SET82 = '^[!"%&\'()*+,\\-./0-9:;<=>?A-Z_a-z]{1,20}$'
const set82 = (what: string, examples: string[]) =>
  Type.String({
    pattern: SET82,
    description: `${what}: 1 to 20 characters of the GS1 character set 82 (letters, digits, ! " % & ' ( ) * + , - . / : ; < = > ? _).`,
    'x-message': { fr: '1 à 20 caractères du jeu GS1 (lettres, chiffres, ponctuation simple)', en: '1 to 20 characters of the GS1 character set (letters, digits, simple punctuation)' },
    examples,
  })
export const Serial = set82('Serial number', ['4K7D9Q2M1X'])
export const Batch = set82('Batch (lot) number', ['LOT2026A'])
export const ProductCodeParam = Type.String({
  pattern: '^\\d{13,14}$',
  description: 'CIP13, or GTIN-14 (0 + CIP13).',
  'x-message': { fr: 'un CIP13 (13 chiffres) ou un GTIN-14 (14 chiffres) est attendu', en: 'a CIP13 (13 digits) or a GTIN-14 (14 digits) is expected' },
  examples: ['3400949497294'],
})

/** For the OpenAPI document: the enum with one line per code, its national code, and its French and English messages. */
const RETURN_CODES_DESCRIPTION = [
  'Stable return code of a pack verification or state change, with the national system’s (NMVS) code and when it raises an alert (see the alert rules in the README). French message, then English:',
  '',
  ...RETURN_CODE_NAMES.map((k) => {
    const on = alertOn(k)
    return `- \`${k}\`${RETURN_CODES[k].nmvs ? ` (${RETURN_CODES[k].nmvs})` : ''}${on.length ? ` — alerte / alert: ${on.join(', ')}` : ''}: ${RETURN_CODES[k].fr} — ${RETURN_CODES[k].en}`
  }),
].join('\n')

export const ReturnCode = Type.Enum([...RETURN_CODE_NAMES], { description: RETURN_CODES_DESCRIPTION })

export const ReturnCodeEntry = component(
  Type.Object(
    {
      code: ReturnCode,
      ok: Type.Boolean({ description: 'Whether the operation succeeded.' }),
      alert: Type.Boolean({ description: 'The result may mean a falsified or diverted pack: on the attempts listed in `alertOn` it raises an alert (quarantine the box).' }),
      alertOn: Type.Array(Type.Enum(['verify', 'decommission', 'undo']), { description: 'The attempts on which this code raises an alert: a verification, a decommission (supply, destroy…), an undo or unlock.' }),
      nmvs: nullable(Type.String({ description: 'The code of the European / national verification system for the same situation.' })),
      fr: Type.String({ description: 'What the pharmacist should do, in French.' }),
      en: Type.String({ description: 'The same in English.' }),
    },
    { $id: 'SerializationReturnCode', examples: [{ code: 'UNKNOWN_SERIAL', ok: false, alert: true, alertOn: ['verify', 'decommission', 'undo'], nmvs: 'NMVS_NC_PC_02', fr: 'Numéro de série inconnu : …', en: 'Unknown serial number: …' }] },
  ),
)

const packFields = {
  dataMatrix: Type.Optional(
    Type.String({
      maxLength: 4096,
      description:
        'The GS1 element string as the scanner returns it (AIs 01, 17, 10, 21; group separator ASCII 29, or {GS}, [GS], ^], \\x1d; optional ]d2, ]Q3 or ]C1 prefix). Give either this or the four fields.',
      examples: [']d201034009494972942110000000001\u001d10LOT2026A\u001d17271231'],
    }),
  ),
  product: Type.Optional(Type.String({ maxLength: 100, description: 'CIP13 or GTIN-14.', examples: ['3400949497294'] })),
  serial: Type.Optional(Type.String({ maxLength: 100, examples: ['10000000001'] })),
  batch: Type.Optional(Type.String({ maxLength: 100, examples: ['LOT2026A'] })),
  expiry: Type.Optional(Type.String({ maxLength: 100, description: 'YYYY-MM-DD, or YYMMDD as printed (day 00 = end of month).', examples: ['2027-12-31'] })),
}

export const PackInput = component(
  Type.Object(packFields, {
    $id: 'PackInput',
    additionalProperties: false,
    description: 'One pack: the scanned DataMatrix, or its product, serial, batch and expiry as separate fields.',
    examples: [{ dataMatrix: ']d201034009494972942110000000001\u001d10LOT2026A\u001d17271231' }, { product: '3400949497294', serial: '10000000001', batch: 'LOT2026A', expiry: '2027-12-31' }],
  }),
)

export const PackAction = Type.Enum([...ACTIONS], {
  description:
    'supply (dispensed), destroy, stolen, sample, free_sample, lock, export: from active only. undo: back to active, for supplied, sample, free_sample, locked or exported, within 10 days, by the same organisation and user, naming the transaction; unlock: undo of lock. destroy and stolen are final; on a recalled, withdrawn or expired batch only destroy and stolen are accepted, and nothing is undone.',
})

export const PackChange = component(
  Type.Object(
    {
      action: PackAction,
      transactionId: Type.Optional(Type.String({ maxLength: 100, description: 'For undo and unlock: the transactionId of the change to revert.' })),
      ...packFields,
    },
    {
      $id: 'PackChangeInput',
      additionalProperties: false,
      examples: [
        { action: 'supply', dataMatrix: ']d201034009494972942110000000001\u001d10LOT2026A\u001d17271231' },
        { action: 'undo', transactionId: '0b8e9a8e-2f7c-4d43-9c57-5a3b6f1f8a10', product: '3400949497294', serial: '10000000001', batch: 'LOT2026A', expiry: '2027-12-31' },
      ],
    },
  ),
)

const InputError = Type.Object({
  field: Type.String({ description: 'dataMatrix, product, serial, batch or expiry.' }),
  code: Type.String({ description: 'e.g. MISSING_SEPARATOR, DUPLICATE_AI, GTIN_CHECK_DIGIT, INVALID_CHARACTER, SYMBOLOGY_CORRUPTED.' }),
  position: Type.Optional(Type.Integer({ description: '1-based character position in the scanned string (0: the whole string).' })),
  message: Type.String(),
})

export const PackResult = component(
  Type.Object(
    {
      ok: Type.Boolean(),
      code: ReturnCode,
      message: Type.String({ description: 'What to do, in French (English with Accept-Language: en).' }),
      alert: Type.Boolean({ description: 'Possible falsification: quarantine the box.' }),
      pack: nullable(
        Type.Object({
          product: nullable(Type.String({ description: 'CIP13 (null when the code is not a French medicine’s).' })),
          gtin: Type.String(),
          serial: Type.String(),
          batch: Type.String({ description: 'As scanned.' }),
          expiry: Type.String({ format: 'date', description: 'As scanned.' }),
          state: Type.Enum([...PACK_STATES, ...BATCH_STATUSES.filter((s) => s !== 'active'), 'not_found'], {
            description: 'The pack’s own state when inactive; else recalled, withdrawn or expired when its batch or product is; else active. not_found: unknown.',
          }),
          batchStatus: nullable(Type.Enum([...BATCH_STATUSES])),
          dispensable: Type.Boolean(),
        }),
      ),
      transactionId: Type.Optional(Type.String({ format: 'uuid', description: 'The transaction of a state change: keep it to undo.' })),
      undid: Type.Optional(Type.String({ format: 'uuid', description: 'The transaction an undo reverted.' })),
      alertReference: Type.Optional(
        Type.String({ description: 'When `alert` is true: the reference of the alert raised and sent to the product’s lab (quarantine the box and keep this reference).', examples: ['ALR-2026-000123'] }),
      ),
      errors: Type.Optional(Type.Array(InputError, { description: 'Why the pack could not be read (INVALID_CODE).' })),
    },
    {
      $id: 'PackResult',
      description: 'The answer about one pack; a refusal is an answer too (ok false, with its code), not an HTTP error.',
      examples: [
        {
          ok: true, code: 'PACK_ACTIVE', message: 'Boîte authentique et active : vous pouvez la délivrer.', alert: false,
          pack: { product: '3400949497294', gtin: '03400949497294', serial: '10000000001', batch: 'LOT2026A', expiry: '2027-12-31', state: 'active', batchStatus: 'active', dispensable: true },
        },
      ],
    },
  ),
)

export const BulkVerify = component(
  Type.Object({ packs: Type.Array(PackInput, { minItems: 1, maxItems: 100 }) }, { $id: 'PackBulkVerifyInput', additionalProperties: false }),
)
export const BulkChange = component(
  Type.Object({ items: Type.Array(PackChange, { minItems: 1, maxItems: 100 }) }, { $id: 'PackBulkChangeInput', additionalProperties: false }),
)
export const BulkResult = component(
  Type.Object(
    {
      results: Type.Array(PackResult, { description: 'One per pack, in the order given.' }),
      summary: Type.Object({ total: Type.Integer(), ok: Type.Integer(), failed: Type.Integer(), alerts: Type.Integer() }),
    },
    { $id: 'PackBulkResult', description: 'Partial success is normal: read each result.' },
  ),
)

export const PackUpload = component(
  Type.Object(
    {
      product: ProductCodeParam,
      batch: Batch,
      expiry: Type.String({ description: 'YYYY-MM-DD, or YYMMDD as printed (day 00 = end of month).', examples: ['2027-12-31'] }),
      serials: Type.Array(Serial, { minItems: 1, maxItems: 10_000, description: 'Up to 10,000 serials per call; for larger batches, the streamed upload (text/plain, one serial per line) or several calls (idempotent).' }),
    },
    { $id: 'PackUploadInput', additionalProperties: false, examples: [{ product: '3400949497294', batch: 'LOT2026A', expiry: '2027-12-31', serials: ['10000000001', '10000000002'] }] },
  ),
)

export const PackUploadReport = component(
  Type.Object(
    {
      product: Type.String(),
      batch: Type.String(),
      expiry: Type.String({ format: 'date' }),
      received: Type.Integer(),
      created: Type.Integer({ description: 'New packs.' }),
      unchanged: Type.Integer({ description: 'Already uploaded in this batch (a re-upload changes nothing).' }),
      duplicatesInRequest: Type.Integer(),
      conflicts: Type.Array(Type.Object({ serial: Type.String(), batch: Type.String({ description: 'The batch it was uploaded in.' }) }), {
        description: 'Serials already uploaded in another batch of this product: left as they were.',
      }),
    },
    { $id: 'PackUploadReport', examples: [{ product: '3400949497294', batch: 'LOT2026A', expiry: '2027-12-31', received: 2, created: 2, unchanged: 0, duplicatesInRequest: 0, conflicts: [] }] },
  ),
)

/** At most this many conflicts are listed in a streamed upload's report (conflictCount counts them all). */
export const STREAM_CONFLICTS_LISTED = 1_000

export const PackStreamReport = component(
  Type.Object(
    {
      product: Type.String(),
      batch: Type.String(),
      expiry: Type.String({ format: 'date' }),
      received: Type.Integer({ description: 'Serials read: the non-empty lines of the body.' }),
      created: Type.Integer({ description: 'New packs.' }),
      unchanged: Type.Integer({
        description: 'Lines whose serial was already in this batch: uploaded before, or on an earlier line of this upload (a repeated line counts here, not apart).',
      }),
      conflictCount: Type.Integer({ description: 'Lines whose serial is already uploaded in another batch of this product (left as it was).' }),
      conflicts: Type.Array(Type.Object({ serial: Type.String(), batch: Type.String({ description: 'The batch it was uploaded in.' }) }), {
        maxItems: STREAM_CONFLICTS_LISTED,
        description: `The first ${STREAM_CONFLICTS_LISTED.toLocaleString('en')} conflicts found (conflictCount counts them all).`,
      }),
    },
    {
      $id: 'PackStreamReport',
      description: 'What a streamed upload did: received = created + unchanged + conflictCount.',
      examples: [{ product: '3400949497294', batch: 'LOT2026A', expiry: '2027-12-31', received: 1000000, created: 999998, unchanged: 1, conflictCount: 1, conflicts: [{ serial: '10000000042', batch: 'LOT2025Z' }] }],
    },
  ),
)

export const StatusChange = component(
  Type.Object(
    {
      status: Type.Enum([...BATCH_STATUSES], { description: 'active (e.g. a status set by mistake), recalled, withdrawn or expired.' }),
      reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    },
    { $id: 'SerialStatusInput', additionalProperties: false, examples: [{ status: 'recalled', reason: 'Défaut de conditionnement' }] },
  ),
)

export const BatchFigures = component(
  Type.Object(
    {
      product: Type.String(),
      batch: Type.String(),
      expiry: Type.String({ format: 'date' }),
      status: Type.Enum([...BATCH_STATUSES], {
        description: 'What its packs answer at verification and at the dispensation check (one rule): recalled while a DP-Rappels recall blocks the batch or the lab recalled batch or product, withdrawn, expired (declared, or past its expiry date), else active.',
      }),
      labStatus: Type.Enum([...BATCH_STATUSES], { description: 'The status you set on this batch (PUT …/status).' }),
      statusReason: nullable(Type.String({ description: 'The reason you gave with it.' })),
      productStatus: Type.Enum([...BATCH_STATUSES], { description: 'The status you set on the whole product.' }),
      recalls: Type.Array(Type.String({ description: 'Recall reference.' }), { description: 'The DP-Rappels recalls that block the batch now.' }),
      packs: Type.Integer(),
      byState: Type.Record(Type.String(), Type.Integer(), { description: 'Packs per state (active, supplied, destroyed…).' }),
    },
    {
      $id: 'SerialBatch',
      examples: [{ product: '3400949497294', batch: 'LOT2026A', expiry: '2027-12-31', status: 'recalled', labStatus: 'active', statusReason: null, productStatus: 'active', recalls: ['R-2026-0042'], packs: 3, byState: { active: 2, supplied: 1 } }],
    },
  ),
)
export const BatchPage = Page(BatchFigures, 'SerialBatchPage')

export const ProductStatus = component(
  Type.Object(
    { product: Type.String(), status: Type.Enum([...BATCH_STATUSES]), previous: Type.Enum([...BATCH_STATUSES]) },
    { $id: 'SerialProductStatus', examples: [{ product: '3400949497294', status: 'withdrawn', previous: 'active' }] },
  ),
)
