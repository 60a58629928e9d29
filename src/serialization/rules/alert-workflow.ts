/**
 * The alert workflow's steps: new → under_investigation → closed (with a conclusion); a lab concluding
 * "falsification suspected" escalates the alert to ANSM instead of closing it, and ANSM closes it. Who may write on
 * an alert, and when. Each refusal is a 409 naming the alert.
 */
import type { Role } from '../../platform/db/schema.ts'
import { conflict } from '../../platform/errors.ts'
import type { AlertConclusion, AlertStatus } from '../db.ts'

/** Where the lab's status change takes the alert; null: the current status again, nothing changes. */
export function alertStatusStep(
  reference: string,
  current: AlertStatus,
  input: { status: 'under_investigation' | 'closed'; conclusion?: AlertConclusion | undefined },
): { status: AlertStatus; concluded: boolean; escalated: boolean } | null {
  if (current === input.status && input.status !== 'closed') return null
  const step = input.status === 'under_investigation' ? current === 'new' : current === 'under_investigation'
  if (!step) {
    throw conflict(
      `L’alerte ${reference} est « ${current} » : elle passe de new à under_investigation, puis à closed (ou escalated vers l’ANSM si une falsification est suspectée).`,
      `Alert ${reference} is "${current}": it moves from new to under_investigation, then to closed (or escalated to ANSM when a falsification is suspected).`,
    )
  }
  if (input.status === 'closed' && !input.conclusion) {
    throw conflict('Une conclusion est requise pour clore l’alerte.', 'A conclusion is required to close the alert.', { errors: [{ field: 'body.conclusion', code: 'required', message: 'conclusion required' }] })
  }
  const concluded = input.status === 'closed'
  const escalated = concluded && input.conclusion === 'falsification_suspected'
  return { status: escalated ? 'escalated' : input.status, concluded, escalated }
}

/** ANSM closes only the alerts a lab escalated to it. */
export function assertEscalated(reference: string, current: AlertStatus) {
  if (current !== 'escalated') {
    throw conflict(`L’alerte ${reference} est « ${current} » : l’ANSM clôt les alertes que le laboratoire lui a transmises (escalated).`, `Alert ${reference} is "${current}": ANSM closes the alerts the lab escalated to it (escalated).`)
  }
}

/** Who writes a message on the alert: the lab, the pharmacy, or ANSM on an escalated alert; nobody on a closed one. */
export function messageAuthor(reference: string, current: AlertStatus, role: Role): 'lab' | 'pharmacy' | 'ansm' {
  if (current === 'closed') throw conflict(`L’alerte ${reference} est close.`, `Alert ${reference} is closed.`)
  const author = role === 'lab' ? 'lab' : role === 'ansm' ? 'ansm' : 'pharmacy'
  if (author === 'ansm' && current !== 'escalated') throw conflict(`L’alerte ${reference} n’a pas été transmise à l’ANSM.`, `Alert ${reference} was not escalated to ANSM.`)
  return author
}
