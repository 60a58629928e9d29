/**
 * The BDPM availability file (CIS_CIP_Dispo_Spec.txt) as the shortage import reads it, and the declaration each
 * of its lines stands for (the import itself: use-cases/availability-import.ts).
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
 */
import { type Actor, SYSTEM } from '../../platform/audit.ts'
import { readAvailabilityFields, splitLines } from '../../referential/rules/bdpm-format.ts'
import type { DeclarationKind, DeclarationRow, DeclarationStatus } from '../db.ts'

export const AVAILABILITY_FILE = 'CIS_CIP_Dispo_Spec.txt'
/** Versions written by the import carry this user (with the operator's name after a colon when known). */
export const IMPORT_USER = 'bdpm-availability'
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

// ---- parsing -------------------------------------------------------------------------------------------

/** Reads the file; lines with a bad format are rejected (reason in French, as the BDPM import reports them), in line order. */
export function parseAvailability(buf: Buffer, reject: (line: number, cis: string, cip13: string | null, reason: string) => void): { lines: AvailabilityLine[]; read: number } {
  const out: AvailabilityLine[] = []
  const seen = new Map<string, number>()
  const notes: Array<Parameters<typeof reject>> = []
  const { lines, read } = splitLines('availability', buf, (line, reason, cis) => notes.push([line, cis, null, reason]))
  for (const { no, f } of lines) {
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
      notes.push([no, cis, cip13 || null, reason])
      continue
    }
    seen.set(key, no)
    out.push({
      no, cis, cip13, code: Number(code) as AvailabilityLine['code'], label,
      start: dates.start ?? null, updatedOn: dates.sixth ?? null, returned: dates.returned ?? null, link: link || null,
    })
  }
  for (const n of notes.sort((a, b) => a[0] - b[0])) reject(...n)
  return { lines: out, read }
}

// ---- mapping -------------------------------------------------------------------------------------------

export interface Target {
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

export const fingerprintOf = (l: AvailabilityLine) => JSON.stringify([l.code, l.label, l.start, l.returned, l.link])

/** What the declaration says for a rupture, tension or arrêt line (code 4 resolves instead). */
export function targetOf(l: AvailabilityLine, today: string, current: DeclarationRow | null): Target {
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
export const sameTarget = (row: DeclarationRow, t: Target) => TARGET_FIELDS.every((k) => (row[k] ?? null) === (t[k] ?? null))
export const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join()

/** The line record of a line: what the import keeps of it to recognise it next time. */
export function lineValues(l: AvailabilityLine, now: Date) {
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
