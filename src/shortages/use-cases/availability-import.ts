/**
 * DP-Ruptures item 7: the BDPM availability file (CIS_CIP_Dispo_Spec.txt) seeds and reconciles shortage
 * declarations, so that an instance starts with the country's real situation. The file's format and the
 * declaration each line stands for: rules/availability-file.ts; the import's statements:
 * queries/availability-import.ts and queries/declarations.ts.
 *
 * Rules:
 * - the import only changes declarations it created (source `bdpm`) and whose latest version it wrote: as soon as
 *   the lab changes one, it is the lab's, and a presentation covered by a lab's open declaration is left out of the
 *   imported one (reported as skipped when nothing is left);
 * - a line whose CIP13 is empty covers every presentation of the CIS not withdrawn (`abrogée`), except those a line
 *   of the same file names explicitly;
 * - reconciliation: an imported declaration still open whose line is no longer in the file is resolved (not with
 *   `partial`, nor when no line of the file is usable: a wrong or truncated file must not end every shortage);
 * - a status change the lifecycle does not allow (rupture → tension: ongoing → declared) resolves the declaration
 *   and opens a new one;
 * - idempotent: the same file again changes no declaration, version, event or line record;
 * - a line that cannot be used (bad format, unknown CIS or CIP13, holder mapped to no lab…) is reported with its
 *   reason and skipped; the run is one transaction (a database error changes nothing).
 * Every change goes through recordVersion (use-cases/versions.ts): version, history, audit and the events to
 * pharmacies with an open signal, exactly as a lab's change through the API. The actor is a system actor
 * (`bdpm-availability…`).
 */
import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import { type Actor, audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { parisDay } from '../../platform/paris-time.ts'
import type { DeclarationRow } from '../db.ts'
import * as q from '../queries/availability-import.ts'
import { deactivateItems, insertDeclaration, insertItems, removeItems, updateDeclaration } from '../queries/declarations.ts'
import { itemsOf } from '../queries/rows.ts'
import {
  AVAILABILITY_FILE,
  type AvailabilityLine,
  fingerprintOf,
  IMPORT_USER,
  importActor,
  type LineNote,
  lineValues,
  parseAvailability,
  sameSet,
  sameTarget,
  type Target,
  targetOf,
} from '../rules/availability-file.ts'
import { checkDeclaration, isClosed } from '../rules/declarations.ts'
import { snapshotOf } from '../rules/views.ts'
import { TRANSITIONS } from '../schemas.ts'
import { recordVersion } from './versions.ts'

export interface AvailabilityReport {
  /** The run's time (the clock given), also the audit entry's objectId. */
  at: string
  file: string
  /** Non-blank lines read. */
  read: number
  /** Declarations created. */
  created: number
  /** Declarations changed (a new version), open or closed by the change (arrêt reached). */
  updated: number
  /** Declarations resolved: remise à disposition, line gone from the file, or replaced after a status change. */
  resolved: number
  /** Lines whose declaration already says what the line says. */
  unchanged: number
  /** Remise à disposition lines with no imported declaration open: nothing to resolve. */
  ignored: number
  /** Lines left out because a lab's own declaration covers all their presentations. */
  skipped: LineNote[]
  /** Lines that cannot be used, with the reason. */
  rejected: LineNote[]
  /** Whether imported declarations missing from the file were resolved (not for a partial file or one with no usable line). */
  reconciled: boolean
  /** Every declaration the run changed. */
  changes: Array<{ declarationId: string; action: 'created' | 'updated' | 'resolved'; line: number | null; cis: string; cip13: string | null }>
}

/**
 * Seeds or reconciles the declarations from the availability file, in one transaction. `now` is the run's
 * time (the application's clock); `actor` should come from importActor().
 */
export async function importAvailability(
  db: Kysely<DB>,
  buf: Buffer,
  opts: { now: Date; actor?: Actor; file?: string; /** Only some lines: do not resolve what the file does not list. */ partial?: boolean },
): Promise<AvailabilityReport> {
  const now = opts.now
  const actor = opts.actor ?? importActor()
  if (!actor.user?.startsWith(IMPORT_USER) || actor.role !== null) throw new Error(`the availability import runs as a system actor whose user starts with ${IMPORT_USER} (see importActor)`)
  const today = parisDay(now)
  const report: AvailabilityReport = {
    at: now.toISOString(), file: opts.file ?? AVAILABILITY_FILE, reconciled: false, read: 0, created: 0, updated: 0, resolved: 0, unchanged: 0, ignored: 0, skipped: [], rejected: [], changes: [],
  }
  // A rejected line keeps the declaration its key already has: a typo in a date must not resolve a shortage.
  const kept = new Set<string>()
  const reject = (line: number, cis: string, cip13: string | null, reason: string) => {
    report.rejected.push({ line, cis, cip13, reason })
    kept.add(`${cis}|${cip13 ?? ''}`)
  }
  const parsed = parseAvailability(buf, reject)
  report.read = parsed.read

  return inTransaction(db, async (tx) => {
    await q.lockAvailabilityImports(tx)

    // ---- the referential for the file's CIS --------------------------------------------------------------
    const cisList = [...new Set(parsed.lines.map((l) => l.cis))]
    const medicines = new Map<string, { lab_id: string | null; holder: string | null }>()
    const presentationsOf = new Map<string, Array<{ cip13: string; withdrawn: boolean }>>()
    const cisOfPresentation = new Map<string, string>()
    for (const m of await q.medicinesOf(tx, cisList)) medicines.set(m.cis, m)
    const explicit = [...new Set(parsed.lines.filter((l) => l.cip13).map((l) => l.cip13))]
    for (const p of await q.presentationsOfCis(tx, cisList)) {
      const list = presentationsOf.get(p.cis) ?? []
      list.push({ cip13: p.cip13, withdrawn: /abrog/i.test(p.administrative_status ?? '') })
      presentationsOf.set(p.cis, list)
      cisOfPresentation.set(p.cip13, p.cis)
    }
    for (const p of await q.presentationsByCip13(tx, explicit.filter((c) => !cisOfPresentation.has(c)))) cisOfPresentation.set(p.cip13, p.cis)
    // Presentations a line names explicitly (and rightly): a line on the whole CIS leaves them to that line.
    const named = new Set(parsed.lines.filter((l) => l.cip13 && cisOfPresentation.get(l.cip13) === l.cis).map((l) => l.cip13))

    // ---- lines usable against the referential, and the presentations each one covers ------------------------
    const usable: Array<{ line: AvailabilityLine; lab: string; cip13s: string[] }> = []
    for (const l of parsed.lines) {
      const m = medicines.get(l.cis)
      const owner = l.cip13 ? cisOfPresentation.get(l.cip13) : undefined
      const cip13s = l.cip13 ? [l.cip13] : (presentationsOf.get(l.cis) ?? []).filter((p) => !p.withdrawn && !named.has(p.cip13)).map((p) => p.cip13)
      const reason = !m
        ? `CIS inconnu ${l.cis} (absent du référentiel : importez d’abord les fichiers BDPM)`
        : !m.lab_id
          ? `titulaire « ${m.holder ?? '(aucun)'} » du CIS ${l.cis} associé à aucun laboratoire (PUT /v1/lab-holders/{titulaire})`
          : l.cip13 && owner === undefined
            ? `CIP13 inconnu ${l.cip13}`
            : l.cip13 && owner !== l.cis
              ? `CIP13 ${l.cip13} : présentation du CIS ${owner}, pas du CIS ${l.cis}`
              : l.code !== 4 && cip13s.length === 0
                ? `aucune présentation commercialisable du CIS ${l.cis} dans le référentiel`
                : null
      if (reason) {
        reject(l.no, l.cis, l.cip13 || null, reason)
        continue
      }
      usable.push({ line: l, lab: m!.lab_id!, cip13s })
    }

    // ---- what the import already holds ----------------------------------------------------------------------
    // The latest line record per key, with its declaration and whether the import still owns it.
    const links = await q.lineRecords(tx)
    const latest = new Map<string, (typeof links)[number]>()
    for (const b of links) latest.set(`${b.cis}|${b.cip13}`, b)
    const owned = (b: (typeof links)[number]) => !isClosed(b.status) && (b.last_user ?? '').startsWith(IMPORT_USER)
    const managed = new Map([...latest.values()].filter(owned).map((b) => [b.declaration_id, b]))

    const rows = new Map<string, DeclarationRow>()
    const previous = new Map<string, ReturnType<typeof snapshotOf>>()
    const items = new Map<string, string[]>()
    if (managed.size) {
      const ids = [...managed.keys()]
      const itemMap = await itemsOf(tx, ids)
      for (const r of await q.lockDeclarations(tx, ids)) {
        rows.set(r.id, r)
        previous.set(r.id, snapshotOf(r, itemMap.get(r.id) ?? []))
        items.set(r.id, (itemMap.get(r.id) ?? []).map((i) => i.cip13))
      }
    }

    // Reconciliation resolves imported declarations whose line left the file. Not for a partial file, nor for a
    // file with no usable line at all (a wrong or truncated file must not resolve the country's shortages).
    report.reconciled = opts.partial !== true && usable.length > 0
    const usableKeys = new Set(usable.map((u) => `${u.line.cis}|${u.line.cip13}`))
    // Imported declarations this run leaves as they are: their line was rejected, or is absent from a file that
    // does not reconcile. They keep their presentations, like the lab's own.
    const untouched = new Set(
      [...managed].filter(([, b]) => !usableKeys.has(`${b.cis}|${b.cip13}`) && (kept.has(`${b.cis}|${b.cip13}`) || !report.reconciled)).map(([id]) => id),
    )

    // Presentations held by an open declaration the import does not own (the lab's), or leaves untouched: left
    // out of the imported ones.
    const wanted = [...new Set(usable.flatMap((u) => u.cip13s))]
    const heldBy = new Map<string, string>()
    for (const h of await q.activeItemsOn(tx, wanted)) if (!managed.has(h.declaration_id) || untouched.has(h.declaration_id)) heldBy.set(h.cip13, h.declaration_id)

    // ---- the plan -------------------------------------------------------------------------------------------
    /** The target, or null (line rejected) when it breaks a declaration rule: never the whole import. */
    const valid = (l: AvailabilityLine, t: Target): Target | null => {
      try {
        checkDeclaration(t, 'fr', `ligne ${l.no}`)
        return t
      } catch (err) {
        const detail = err instanceof Error ? err.message : String(err)
        reject(l.no, l.cis, l.cip13 || null, `déclaration incohérente : ${detail}`)
        return null
      }
    }
    type Plan =
      | { op: 'update'; id: string; line: AvailabilityLine; cip13s: string[]; target: Target }
      | { op: 'create'; line: AvailabilityLine; lab: string; cip13s: string[]; target: Target; replaces: string | null }
    const plans: Plan[] = []
    const resolve: Array<{ id: string; reason: string; line: AvailabilityLine | null; closedReason: 'missing' | 'line'; end: string | null }> = []
    const inFile = new Set<string>()

    for (const u of usable) {
      const l = u.line
      const key = `${l.cis}|${l.cip13}`
      inFile.add(key)
      const link = latest.get(key)
      const open = link && managed.has(link.declaration_id) ? rows.get(link.declaration_id)! : null
      if (l.code === 4) {
        if (open) resolve.push({ id: open.id, line: l, closedReason: 'line', end: l.returned ?? l.start ?? today, reason: `remise à disposition publiée dans la BDPM (ligne ${l.no})` })
        else if (link && link.fingerprint === fingerprintOf(l)) report.unchanged++
        else report.ignored++
        continue
      }
      const cip13s = u.cip13s.filter((c) => !heldBy.has(c))
      if (cip13s.length === 0) {
        const by = [...new Set(u.cip13s.map((c) => heldBy.get(c)))].join(', ')
        report.skipped.push({ line: l.no, cis: l.cis, cip13: l.cip13 || null, reason: `présentation(s) couverte(s) par une autre déclaration en cours (${by})` })
        if (open) resolve.push({ id: open.id, line: l, closedReason: 'line', end: null, reason: `présentations reprises par une déclaration du laboratoire (ligne ${l.no})` })
        continue
      }
      if (open) {
        const target = valid(l, targetOf(l, today, open))
        if (!target) continue
        if (target.status === open.status || TRANSITIONS[open.status].includes(target.status)) {
          plans.push({ op: 'update', id: open.id, line: l, cip13s, target })
        } else {
          const fresh = valid(l, targetOf(l, today, null))
          if (!fresh) continue
          resolve.push({ id: open.id, line: l, closedReason: 'line', end: null, reason: `statut BDPM changé en « ${l.label} » (ligne ${l.no}) : nouvelle déclaration` })
          plans.push({ op: 'create', line: l, lab: u.lab, cip13s, target: fresh, replaces: open.id })
        }
        continue
      }
      // No open declaration of ours: the same line already imported (and closed since, by the line itself or by
      // the lab) is not imported again; a new or changed line, or one back after it left the file, is.
      if (link && link.closed_reason !== 'missing' && link.fingerprint === fingerprintOf(l)) {
        report.unchanged++
        continue
      }
      const target = valid(l, targetOf(l, today, null))
      if (target) plans.push({ op: 'create', line: l, lab: u.lab, cip13s, target, replaces: null })
    }
    // Reconciliation: imported declarations still open whose line left the file.
    for (const [id, b] of report.reconciled ? managed : []) {
      const key = `${b.cis}|${b.cip13}`
      if (!inFile.has(key) && !kept.has(key)) resolve.push({ id, line: null, closedReason: 'missing', end: null, reason: 'absente du fichier de disponibilité de la BDPM' })
    }

    // ---- 1. closes: they free presentations for what follows ------------------------------------------------
    for (const r of resolve) {
      const row = rows.get(r.id)!
      const start = row.actual_start ?? row.anticipated_start
      let end = r.end ?? today
      if (start && end < start) end = start
      await updateDeclaration(tx, r.id, { status: 'resolved', actual_end: end, closed_at: now, version: row.version + 1, updated_at: now })
      await deactivateItems(tx, r.id)
      // A remise à disposition line becomes the key's record, so that the same file again finds it unchanged.
      const record = r.line?.code === 4 ? (({ imported_at: _i, ...rest }) => rest)(lineValues(r.line, now)) : {}
      await q.updateLineRecord(tx, r.id, { ...record, closed_reason: r.closedReason })
      await recordVersion(tx, r.id, { action: 'transition:resolved', reason: `Import BDPM : ${r.reason}`, actor, now, previous: previous.get(r.id)! })
      report.resolved++
      report.changes.push({ declarationId: r.id, action: 'resolved', line: r.line?.no ?? null, cis: r.line?.cis ?? managed.get(r.id)!.cis, cip13: (r.line?.cip13 ?? managed.get(r.id)!.cip13) || null })
    }

    // ---- 2. presentations an updated declaration no longer covers -------------------------------------------
    for (const p of plans) {
      if (p.op !== 'update') continue
      const gone = items.get(p.id)!.filter((c) => !p.cip13s.includes(c))
      if (gone.length) await removeItems(tx, p.id, gone)
    }

    // ---- 3. updates -----------------------------------------------------------------------------------------
    for (const p of plans) {
      if (p.op !== 'update') continue
      const row = rows.get(p.id)!
      const before = items.get(p.id)!
      const link = latest.get(`${p.line.cis}|${p.line.cip13}`)!
      const lineRecord = lineValues(p.line, now)
      const fieldsSame = sameTarget(row, p.target)
      if (fieldsSame && sameSet(before, p.cip13s)) {
        if (link.fingerprint !== lineRecord.fingerprint || link.bdpm_updated_on !== lineRecord.bdpm_updated_on) {
          const { imported_at: _i, ...rest } = lineRecord
          await q.updateLineRecord(tx, p.id, rest)
        }
        report.unchanged++
        continue
      }
      const added = p.cip13s.filter((c) => !before.includes(c))
      const isClosing = isClosed(p.target.status)
      if (added.length) await insertItems(tx, p.id, added)
      await updateDeclaration(tx, p.id, {
        ...p.target,
        version: row.version + 1,
        updated_at: now,
        ...(row.status === 'draft' ? { declared_at: now } : {}),
        ...(isClosing ? { closed_at: now } : {}),
      })
      if (isClosing) await deactivateItems(tx, p.id)
      const { imported_at: _i, ...rest } = lineRecord
      await q.updateLineRecord(tx, p.id, { ...rest, closed_reason: isClosing ? 'line' : null })
      const action = p.target.status !== row.status ? `transition:${p.target.status}` : 'updated'
      await recordVersion(tx, p.id, { action, reason: `Import BDPM : ${p.line.label} (ligne ${p.line.no})`, actor, now, previous: previous.get(p.id)! })
      report.updated++
      report.changes.push({ declarationId: p.id, action: 'updated', line: p.line.no, cis: p.line.cis, cip13: p.line.cip13 || null })
    }

    // ---- 4. creations ---------------------------------------------------------------------------------------
    for (const p of plans) {
      if (p.op !== 'create') continue
      const id = randomUUID()
      const isClosing = isClosed(p.target.status)
      await insertDeclaration(tx, {
        id,
        lab_id: p.lab,
        source: 'bdpm',
        ...p.target,
        version: 1,
        change_seq: -Date.now(), // replaced by recordVersion in this transaction
        mitm: false,
        atc: null,
        stock_coverage_days: null,
        allocation_in_place: false,
        allocation_details: null,
        alternatives: '[]',
        created_at: now,
        updated_at: now,
        declared_at: now,
        closed_at: isClosing ? now : null,
      })
      await insertItems(tx, id, p.cip13s, !isClosing)
      await q.insertLineRecord(tx, { declaration_id: id, ...lineValues(p.line, now), closed_reason: isClosing ? 'line' : null })
      const reason = `Import BDPM : ${p.line.label} (ligne ${p.line.no})${p.replaces ? `, remplace ${p.replaces}` : ''}`
      await recordVersion(tx, id, { action: 'created', reason, actor, now, previous: null })
      report.created++
      report.changes.push({ declarationId: id, action: 'created', line: p.line.no, cis: p.line.cis, cip13: p.line.cip13 || null })
    }

    await audit(
      tx,
      actor,
      {
        action: 'shortage-availability.imported',
        objectType: 'shortage-availability-import',
        objectId: report.at,
        changes: {
          file: report.file, read: report.read, created: report.created, updated: report.updated, resolved: report.resolved,
          unchanged: report.unchanged, ignored: report.ignored, skipped: report.skipped.length, rejected: report.rejected.length, reconciled: report.reconciled,
        },
      },
      now,
    )
    report.rejected.sort((a, b) => a.line - b.line)
    return report
  })
}
