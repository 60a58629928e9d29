/**
 * The scanners' pack calls: verify and change state, one pack or in bulk. Every answer about a readable French pack
 * is logged under pseudonyms and, when it raises an alert (rules/alerts.ts), carries the alert's reference
 * (alert-raising.ts).
 */
import type { Static } from 'typebox'
import type { Principal } from '../../platform/auth.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { Lang } from '../../platform/i18n.ts'
import { ChangeBatcher } from '../queries/change-batch.ts'
import { VerifyBatcher } from '../queries/verify-batch.ts'
import { ALERT_TEXT, RETURN_CODES, type ReturnCodeName } from '../rules/codes.ts'
import { type PackInput, type PackRef, type PackResult as PackOutcome, resolvePack } from '../rules/packs.ts'
import { type Scanner, scannerMemo } from '../rules/pseudonyms.ts'
import type { PackChange, PackResult } from '../schemas/packs.ts'
import { recordScan } from './alert-raising.ts'
import { changePackState } from './pack-state.ts'

/** Built once per instance: these calls are the hot paths, so nothing per call but the answer is allocated. */
export interface PackDeps {
  database: DatabaseHandle
  now: () => Date
  /** Who scans, as pseudonyms: no FINESS and no user id is stored by serialization (rules/pseudonyms.ts). */
  scannerOf: (principal: Principal) => Scanner
  verifier: VerifyBatcher
  changes: ChangeBatcher
}

/** The pack calls' dependencies for one instance: its pseudonyms' memo, and the batchers that group concurrent calls. */
export function packDeps(database: DatabaseHandle, now: () => Date, pseudonymSecret: string): PackDeps {
  return { database, now, scannerOf: scannerMemo(pseudonymSecret), verifier: new VerifyBatcher(database), changes: new ChangeBatcher(database) }
}

type Result = Static<typeof PackResult>

function render(outcome: PackOutcome, lang: Lang): Result {
  const text = (outcome.alert && ALERT_TEXT[outcome.code]) || RETURN_CODES[outcome.code]
  return { ...outcome, message: text[lang] }
}

/** The scan was read with its letters' case inverted: the keyboard hint, before any alert (use-cases/alert-raising.ts recordScan). */
const CAPS_LOCK = {
  field: 'dataMatrix',
  code: 'KEYBOARD_CASE_INVERTED',
  fr: 'Le numéro de série et le lot lus correspondent, casse inversée, à une boîte connue : la touche Verr. Maj. est sans doute activée sur le poste ou le lecteur. Désactivez-la et scannez de nouveau.',
  en: 'The serial and batch read match a known pack with their case inverted: Caps Lock is probably on at the workstation or the scanner. Turn it off and scan again.',
}

function invalid(errors: Array<{ field: string; code: string; position?: number; fr: string; en: string }>, lang: Lang): Result {
  return {
    ok: false,
    code: 'INVALID_CODE' satisfies ReturnCodeName,
    message: RETURN_CODES.INVALID_CODE[lang],
    alert: false,
    pack: null,
    errors: errors.map((e) => ({ field: e.field, code: e.code, ...(e.position !== undefined ? { position: e.position } : {}), message: e[lang] })),
  }
}

const summary = (results: Result[]) => ({
  total: results.length,
  ok: results.filter((r) => r.ok).length,
  failed: results.filter((r) => !r.ok).length,
  alerts: results.filter((r) => r.alert).length,
})

// The hot paths (a verification without alert, a successful change) are logged by their own statement; the others here.
async function logged(deps: PackDeps, principal: Principal, ref: PackRef, action: string, r: { outcome: PackOutcome; logged: boolean }, now: Date, lang: Lang): Promise<Result> {
  if (r.logged) return render(r.outcome, lang)
  const record = await recordScan(deps.database, deps.scannerOf(principal), ref, action, r.outcome, now)
  if (record.capsLock) return invalid([CAPS_LOCK], lang)
  return render(record.alertReference ? { ...r.outcome, alertReference: record.alertReference } : r.outcome, lang)
}

/** Read-only for the pack: an unreadable scan answers INVALID_CODE before any pack is looked up. */
export async function verifyPack(deps: PackDeps, principal: Principal, lang: Lang, input: PackInput): Promise<Result> {
  const now = deps.now()
  const resolved = resolvePack(input, now)
  if (!resolved.ok) return invalid(resolved.errors, lang)
  return logged(deps, principal, resolved.pack, 'verify', await deps.verifier.verify(deps.scannerOf(principal), resolved.pack, now), now, lang)
}

export async function verifyPacks(deps: PackDeps, principal: Principal, lang: Lang, packs: PackInput[]) {
  // Concurrently: they join one verification statement (queries/verify-batch.ts); one result per pack, in order.
  const results = await Promise.all(packs.map((p) => verifyPack(deps, principal, lang, p)))
  return { results, summary: summary(results) }
}

/** The pack of a change as read (before any database work). */
const readChange = ({ action: _action, transactionId: _txn, ...pack }: Static<typeof PackChange>, now: Date) => resolvePack(pack, now)

/** Exactly once: of concurrent changes of one active pack, one changes it and the others answer its state. */
export async function changePack(
  deps: PackDeps,
  principal: Principal,
  lang: Lang,
  input: Static<typeof PackChange>,
  now = deps.now(),
  resolved = readChange(input, now),
): Promise<Result> {
  const { action, transactionId } = input
  if (!resolved.ok) return invalid(resolved.errors, lang)
  const r = await changePackState(deps.database, deps.scannerOf(principal), { action, pack: resolved.pack, transactionId }, now, deps.changes)
  return logged(deps, principal, resolved.pack, action, r, now, lang)
}

export async function changePacks(deps: PackDeps, principal: Principal, lang: Lang, items: Array<Static<typeof PackChange>>) {
  // Each pack named once: the items run together and join one grouped statement (queries/change-batch.ts). A pack named
  // twice: in order, so that the second sees the first's change.
  const now = deps.now()
  const reads = items.map((item) => readChange(item, now))
  const named = reads.flatMap((r) => (r.ok && r.pack.cip13 ? [`${r.pack.cip13} ${r.pack.serial}`] : []))
  let results: Result[] = []
  if (new Set(named).size === named.length) results = await Promise.all(items.map((item, i) => changePack(deps, principal, lang, item, now, reads[i])))
  else for (const [i, item] of items.entries()) results.push(await changePack(deps, principal, lang, item, now, reads[i]))
  return { results, summary: summary(results) }
}
