/**
 * DP-Ruptures item 7: the BDPM availability file (CIS_CIP_Dispo_Spec.txt) seeds and reconciles shortage
 * declarations, so that an instance starts with the country's real situation.
 *
 * Format (as published, and as src/referential/rules/bdpm-format.ts reads it): Windows-1252, tab-separated, no header, CRLF,
 * DD/MM/YYYY dates. Columns: CIS · CIP13 (empty = every presentation of the CIS) · status code (1 rupture de stock,
 * 2 tension d'approvisionnement, 3 arrêt de commercialisation, 4 remise à disposition) · status label · start date ·
 * 6th date · return date (remise à disposition) · link to the ANSM notice (optional).
 * The 6th column is "date de mise à jour" in the BDPM's own description of its files, and a planned end in some
 * third-party descriptions (and in the `planned_end_date` column of the referential's copy). Real lines (a tension
 * started in 2023 with a 6th date of last week) read as an update date, so it is kept for information only and is
 * never presented to pharmacists as an estimated end: imported rupture/tension declarations say "end unknown".
 *
 * Mapping (one line = one declaration, owned by the lab the referential gives as the medicine's holder):
 * - 1 rupture de stock → kind `observed`, status `ongoing`, actual start = start date;
 * - 2 tension d'approvisionnement → kind `anticipated` (risque de rupture: supplies are strained, the product is
 *   still delivered, as KIND_LABELS already pairs BDPM code 2 with `anticipated`), status `declared`;
 * - 3 arrêt de commercialisation → kind `discontinuation`; `discontinued` (closed, actual end = start date) once
 *   the date is reached in Paris, `declared` while it is announced for later;
 * - 4 remise à disposition → the line's open declaration is `resolved` (actual end = return date, else start date);
 *   without one there is nothing to do (counted as `ignored`).
 * Cause: `other`, with the BDPM label as text (the file gives no cause); advice: the ANSM link when there is one.
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
 * Every change goes through recordVersion (core.ts): version, history, audit and the events to pharmacies with an
 * open signal, exactly as a lab's change through the API. The actor is a system actor (`bdpm-availability…`).
 */
import { randomUUID } from 'node:crypto'
import type { Generated, Kysely } from 'kysely'
import { sql } from 'kysely'
import { type Actor, audit, SYSTEM } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { decodeBdpm, readAvailabilityFields } from '../referential/rules/bdpm-format.ts'
import type { DeclarationKind, DeclarationRow, DeclarationStatus } from './db.ts'
import { declarationRows, itemsOf } from './queries/rows.ts'
import { checkDeclaration } from './rules/declarations.ts'
import { snapshotOf } from './rules/views.ts'
import { TRANSITIONS } from './schemas.ts'
import { recordVersion } from './use-cases/versions.ts'
import { parisDay } from '../platform/paris-time.ts'
import { inTransaction } from '../platform/db/transaction.ts'

export type DeclarationSource = 'lab' | 'bdpm'


export interface ShortageBdpmLinesTable {
  declaration_id: string
  cis: string
  cip13: string
  fingerprint: string
  status_code: number
  status_label: string
  start_date: string | null
  bdpm_updated_on: string | null
  return_date: string | null
  link: string | null
  imported_at: Date
  closed_reason: 'missing' | 'line' | null
}

declare module '../platform/db/schema.ts' {
  interface DB {
    shortage_bdpm_lines: ShortageBdpmLinesTable
  }
}

export const AVAILABILITY_FILE = 'CIS_CIP_Dispo_Spec.txt'
/** Versions written by the import carry this user (with the operator's name after a colon when known). */
export const IMPORT_USER = 'bdpm-availability'
/** Serialises availability imports. */
const AVAILABILITY_LOCK = 7_203_116

export const importActor = (operator?: string): Actor => ({ ...SYSTEM, user: operator ? `${IMPORT_USER}:${operator}` : IMPORT_USER })

export interface AvailabilityLine {
  /** 1-based line number in the file, counting blank lines. */
  no: number
  cis: string
  /** '' when the line covers every presentation of the CIS. */
  cip13: string
  code: 1 | 2 | 3 | 4
  label: string
  start: string | null
  updatedOn: string | null
  returned: string | null
  link: string | null
}

export interface LineNote {
  line: number
  cis: string
  cip13: string | null
  reason: string
}

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

// ---- parsing -------------------------------------------------------------------------------------------

const COLUMNS = 8
const MIN_COLUMNS = 7 // the link is optional

/** Reads the file; lines with a bad format are rejected (reason in French, as the BDPM import reports them). */
export function parseAvailability(buf: Buffer, reject: (line: number, cis: string, cip13: string | null, reason: string) => void): { lines: AvailabilityLine[]; read: number } {
  const out: AvailabilityLine[] = []
  const seen = new Map<string, number>()
  let read = 0
  const text = decodeBdpm(buf).split(/\r\n|\n|\r/)
  for (let i = 0; i < text.length; i++) {
    const raw = text[i]!
    if (raw.trim() === '') continue
    read++
    const no = i + 1
    const f = raw.split('\t').map((x) => x.trim())
    while (f.length > COLUMNS && f[f.length - 1] === '') f.pop()
    if (f.length < MIN_COLUMNS || f.length > COLUMNS) {
      reject(no, f[0] ?? '', null, `${COLUMNS} colonnes attendues, ${f.length} trouvée${f.length > 1 ? 's' : ''}`)
      continue
    }
    while (f.length < COLUMNS) f.push('')
    const { cis, cip13, code, label, link, dates, reason: fieldProblem } = readAvailabilityFields(f, 'de mise à jour')
    const key = `${cis}|${cip13}`
    const reason =
      fieldProblem ??
      (code !== '4' && !dates.start
        ? 'date de début absente'
        : seen.has(key)
          ? `statut en double pour CIS ${cis}${cip13 ? ` CIP13 ${cip13}` : ''} (déjà ligne ${seen.get(key)})`
          : null)
    if (reason) {
      reject(no, cis, cip13 || null, reason)
      continue
    }
    seen.set(key, no)
    out.push({
      no, cis, cip13, code: Number(code) as AvailabilityLine['code'], label,
      start: dates.start ?? null, updatedOn: dates.sixth ?? null, returned: dates.returned ?? null, link: link || null,
    })
  }
  return { lines: out, read }
}

// ---- mapping -------------------------------------------------------------------------------------------

interface Target {
  kind: DeclarationKind
  status: DeclarationStatus
  anticipated_start: string | null
  actual_start: string | null
  estimated_end: null
  end_unknown: boolean
  actual_end: string | null
  cause: 'other'
  cause_text: string
  advice: string | null
}

const fingerprintOf = (l: AvailabilityLine) => JSON.stringify([l.code, l.label, l.start, l.returned, l.link])

/** What the declaration says for a rupture, tension or arrêt line (code 4 resolves instead). */
function targetOf(l: AvailabilityLine, today: string, current: DeclarationRow | null): Target {
  const common = {
    estimated_end: null,
    cause: 'other' as const,
    cause_text: `Statut publié dans la base de données publique des médicaments (ANSM) : ${l.label}`,
    advice: l.link ? `Information de l’ANSM : ${l.link}` : null,
  }
  const start = l.start!
  if (l.code === 1) {
    // A tension that became a rupture keeps its anticipated start.
    const anticipated = current?.anticipated_start && current.anticipated_start <= start ? current.anticipated_start : null
    return { ...common, kind: 'observed', status: 'ongoing', anticipated_start: anticipated, actual_start: start, end_unknown: true, actual_end: null }
  }
  if (l.code === 2) return { ...common, kind: 'anticipated', status: 'declared', anticipated_start: start, actual_start: null, end_unknown: true, actual_end: null }
  // 3: arrêt de commercialisation, effective on its date.
  const actualStart = current?.actual_start ?? null
  if (start > today) return { ...common, kind: 'discontinuation', status: 'declared', anticipated_start: start, actual_start: actualStart, end_unknown: false, actual_end: null }
  const end = actualStart && actualStart > start ? actualStart : start
  return { ...common, kind: 'discontinuation', status: 'discontinued', anticipated_start: start, actual_start: actualStart, end_unknown: false, actual_end: end }
}

const TARGET_FIELDS = ['kind', 'status', 'anticipated_start', 'actual_start', 'estimated_end', 'end_unknown', 'actual_end', 'cause', 'cause_text', 'advice'] as const
const sameTarget = (row: DeclarationRow, t: Target) => TARGET_FIELDS.every((k) => (row[k] ?? null) === (t[k] ?? null))
const closed = (s: DeclarationStatus) => s === 'resolved' || s === 'avoided' || s === 'discontinued'
const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join()

// ---- import --------------------------------------------------------------------------------------------

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
    await sql`select pg_advisory_xact_lock(${AVAILABILITY_LOCK})`.execute(tx)

    // ---- the referential for the file's CIS --------------------------------------------------------------
    const cisList = [...new Set(parsed.lines.map((l) => l.cis))]
    const medicines = new Map<string, { lab_id: string | null; holder: string | null }>()
    const presentationsOf = new Map<string, Array<{ cip13: string; withdrawn: boolean }>>()
    const cisOfPresentation = new Map<string, string>()
    for (const part of chunks(cisList)) {
      for (const m of await tx.selectFrom('medicines').select(['cis', 'lab_id', 'holder']).where('cis', 'in', part).execute()) medicines.set(m.cis, m)
    }
    const explicit = [...new Set(parsed.lines.filter((l) => l.cip13).map((l) => l.cip13))]
    for (const part of chunks(cisList)) {
      const rows = await tx.selectFrom('presentations').select(['cip13', 'cis', 'administrative_status']).where('cis', 'in', part).orderBy('cip13').execute()
      for (const p of rows) {
        const list = presentationsOf.get(p.cis) ?? []
        list.push({ cip13: p.cip13, withdrawn: /abrog/i.test(p.administrative_status ?? '') })
        presentationsOf.set(p.cis, list)
        cisOfPresentation.set(p.cip13, p.cis)
      }
    }
    for (const part of chunks(explicit.filter((c) => !cisOfPresentation.has(c)))) {
      for (const p of await tx.selectFrom('presentations').select(['cip13', 'cis']).where('cip13', 'in', part).execute()) cisOfPresentation.set(p.cip13, p.cis)
    }
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
    const links = await tx
      .selectFrom('shortage_bdpm_lines as b')
      .innerJoin('shortage_declarations as d', 'd.id', 'b.declaration_id')
      .select(['b.declaration_id', 'b.cis', 'b.cip13', 'b.fingerprint', 'b.bdpm_updated_on', 'b.closed_reason', 'd.status', 'd.version'])
      .select((eb) =>
        eb
          .selectFrom('shortage_declaration_versions as v')
          .select('v.actor_user')
          .whereRef('v.declaration_id', '=', 'd.id')
          .whereRef('v.version', '=', 'd.version')
          .where('v.actor_role', 'is', null)
          .as('last_user'),
      )
      .orderBy('b.imported_at')
      .orderBy('b.declaration_id')
      .execute()
    const latest = new Map<string, (typeof links)[number]>()
    for (const b of links) latest.set(`${b.cis}|${b.cip13}`, b)
    const owned = (b: (typeof links)[number]) => !closed(b.status) && (b.last_user ?? '').startsWith(IMPORT_USER)
    const managed = new Map([...latest.values()].filter(owned).map((b) => [b.declaration_id, b]))

    const rows = new Map<string, DeclarationRow>()
    const previous = new Map<string, ReturnType<typeof snapshotOf>>()
    const items = new Map<string, string[]>()
    if (managed.size) {
      const ids = [...managed.keys()]
      const itemMap = await itemsOf(tx, ids)
      for (const part of chunks(ids)) {
        for (const r of await declarationRows(tx).where('d.id', 'in', part).forUpdate('d').execute()) {
          rows.set(r.id, r)
          previous.set(r.id, snapshotOf(r, itemMap.get(r.id) ?? []))
          items.set(r.id, (itemMap.get(r.id) ?? []).map((i) => i.cip13))
        }
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
    for (const part of chunks(wanted)) {
      const held = await tx.selectFrom('shortage_declaration_items').select(['cip13', 'declaration_id']).where('cip13', 'in', part).where('active', '=', true).execute()
      for (const h of held) if (!managed.has(h.declaration_id) || untouched.has(h.declaration_id)) heldBy.set(h.cip13, h.declaration_id)
    }

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
      await tx.updateTable('shortage_declarations').set({ status: 'resolved', actual_end: end, closed_at: now, version: row.version + 1, updated_at: now }).where('id', '=', r.id).execute()
      await tx.updateTable('shortage_declaration_items').set({ active: false }).where('declaration_id', '=', r.id).execute()
      // A remise à disposition line becomes the key's record, so that the same file again finds it unchanged.
      const record = r.line?.code === 4 ? (({ imported_at: _i, ...rest }) => rest)(lineValues(r.line, now)) : {}
      await tx.updateTable('shortage_bdpm_lines').set({ ...record, closed_reason: r.closedReason }).where('declaration_id', '=', r.id).execute()
      await recordVersion(tx, r.id, { action: 'transition:resolved', reason: `Import BDPM : ${r.reason}`, actor, now, previous: previous.get(r.id)! })
      report.resolved++
      report.changes.push({ declarationId: r.id, action: 'resolved', line: r.line?.no ?? null, cis: r.line?.cis ?? managed.get(r.id)!.cis, cip13: (r.line?.cip13 ?? managed.get(r.id)!.cip13) || null })
    }

    // ---- 2. presentations an updated declaration no longer covers -------------------------------------------
    for (const p of plans) {
      if (p.op !== 'update') continue
      const gone = items.get(p.id)!.filter((c) => !p.cip13s.includes(c))
      if (gone.length) await tx.deleteFrom('shortage_declaration_items').where('declaration_id', '=', p.id).where('cip13', 'in', gone).execute()
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
          await tx.updateTable('shortage_bdpm_lines').set(rest).where('declaration_id', '=', p.id).execute()
        }
        report.unchanged++
        continue
      }
      const added = p.cip13s.filter((c) => !before.includes(c))
      const isClosing = closed(p.target.status)
      if (added.length) await tx.insertInto('shortage_declaration_items').values(added.map((cip13) => ({ declaration_id: p.id, cip13, active: true }))).execute()
      await tx
        .updateTable('shortage_declarations')
        .set({
          ...p.target,
          version: row.version + 1,
          updated_at: now,
          ...(row.status === 'draft' ? { declared_at: now } : {}),
          ...(isClosing ? { closed_at: now } : {}),
        })
        .where('id', '=', p.id)
        .execute()
      if (isClosing) await tx.updateTable('shortage_declaration_items').set({ active: false }).where('declaration_id', '=', p.id).execute()
      const { imported_at: _i, ...rest } = lineRecord
      await tx.updateTable('shortage_bdpm_lines').set({ ...rest, closed_reason: isClosing ? 'line' : null }).where('declaration_id', '=', p.id).execute()
      const action = p.target.status !== row.status ? `transition:${p.target.status}` : 'updated'
      await recordVersion(tx, p.id, { action, reason: `Import BDPM : ${p.line.label} (ligne ${p.line.no})`, actor, now, previous: previous.get(p.id)! })
      report.updated++
      report.changes.push({ declarationId: p.id, action: 'updated', line: p.line.no, cis: p.line.cis, cip13: p.line.cip13 || null })
    }

    // ---- 4. creations ---------------------------------------------------------------------------------------
    for (const p of plans) {
      if (p.op !== 'create') continue
      const id = randomUUID()
      const isClosing = closed(p.target.status)
      await tx
        .insertInto('shortage_declarations')
        .values({
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
        .execute()
      await tx.insertInto('shortage_declaration_items').values(p.cip13s.map((cip13) => ({ declaration_id: id, cip13, active: !isClosing }))).execute()
      await tx.insertInto('shortage_bdpm_lines').values({ declaration_id: id, ...lineValues(p.line, now), closed_reason: isClosing ? 'line' : null }).execute()
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

function lineValues(l: AvailabilityLine, now: Date) {
  return {
    cis: l.cis,
    cip13: l.cip13,
    fingerprint: fingerprintOf(l),
    status_code: l.code,
    status_label: l.label,
    start_date: l.start,
    bdpm_updated_on: l.updatedOn,
    return_date: l.returned,
    link: l.link,
    imported_at: now,
  }
}

const chunks = <T>(rows: T[], size = 500): T[][] => Array.from({ length: Math.ceil(rows.length / size) }, (_, i) => rows.slice(i * size, (i + 1) * size))

