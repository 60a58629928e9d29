/** The patient's operations, with ID + access code and no account: the PDF, the objection, the access log. */
import { audit } from '../../platform/audit.ts'
import type { Caller } from '../rules/access.ts'
import { authenticateWithCode } from './access.ts'
import { prescriptionPdf } from '../documents.ts'
import * as q from '../queries.ts'
import { type Deps, PATIENT, PATIENT_ACTOR } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

/** The PDF with its QR code (none when cancelled or expired); the download is in the access log. */
export async function patientPdf(deps: Deps, caller: Caller, id: string, accessCode: string, now: Date) {
  await authenticateWithCode(deps.db, deps.codeKey, id, accessCode, caller, now)
  const l = (await q.load(deps.db, id))!
  await q.logAccess(deps.db, id, PATIENT, 'pdf', now)
  return prescriptionPdf(l, now, accessCode)
}

export async function setObjection(deps: Deps, caller: Caller, requestId: string, id: string, accessCode: string, objection: boolean, now: Date) {
  await authenticateWithCode(deps.db, deps.codeKey, id, accessCode, caller, now)
  await inTransaction(deps.db, async (tx) => {
    const before = await tx.selectFrom('eprescriptions').select('patient_objection').where('id', '=', id).forUpdate().executeTakeFirstOrThrow()
    if (before.patient_objection === objection) return
    await q.setStatus(tx, id, { patient_objection: objection }, now)
    await audit(tx, PATIENT_ACTOR(requestId), { action: 'eprescription.objection.set', objectType: 'eprescription', objectId: id, changes: { patientObjection: [before.patient_objection, objection] } }, now)
    await q.logAccess(tx, id, PATIENT, objection ? 'objection.on' : 'objection.off', now)
  })
  return { objection }
}

export async function patientAccessLog(deps: Deps, caller: Caller, id: string, accessCode: string, now: Date) {
  await authenticateWithCode(deps.db, deps.codeKey, id, accessCode, caller, now)
  await q.logAccess(deps.db, id, PATIENT, 'access-log', now)
  const rows = await q.accessLog(deps.db, id)
  return rows.map((r) => ({ at: r.at.toISOString(), role: r.actor_role, organisation: r.actor_org ? { id: r.actor_org, name: r.name } : null, action: r.action }))
}
