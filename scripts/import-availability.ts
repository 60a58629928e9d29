// npm run import:availability -- <file> [--partial] [--verbose]
// --partial: the file lists only some statuses; imported declarations it does not list are left as they are.
// Seeds or reconciles the shortage declarations from the BDPM availability file (CIS_CIP_Dispo_Spec.txt, as
// downloaded from base-donnees-publique.medicaments.gouv.fr) in DATABASE_URL, or the embedded database.
// Import the referential first (npm run import:bdpm): declarations go to the lab the referential gives as holder.
// Rejected and skipped lines are listed and do not fail the run (exit 0); a missing file or a database error exits
// 1 and changes nothing. See src/shortages/rules/availability-file.ts for the mapping.
import { readFile, stat } from 'node:fs/promises'
import { userInfo } from 'node:os'
import { basename, resolve } from 'node:path'
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { importActor } from '../src/shortages/rules/availability-file.ts'
import { importAvailability } from '../src/shortages/use-cases/availability-import.ts'

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith('-'))
const verbose = args.includes('--verbose') || args.includes('-v')
const partial = args.includes('--partial')
if (!file) {
  console.error('Usage : npm run import:availability -- <fichier CIS_CIP_Dispo_Spec.txt> [--partial] [--verbose]')
  process.exit(1)
}

function operator() {
  try {
    return userInfo().username
  } catch {
    return undefined
  }
}

async function main(path: string) {
  const info = await stat(path).catch(() => null)
  if (!info?.isFile()) throw new Error(`Fichier introuvable : ${path}`)
  const buf = await readFile(path)
  const config = loadConfig()
  const database = await createDatabase({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR })
  try {
    const started = Date.now()
    const r = await importAvailability(database.db, buf, { now: new Date(), actor: importActor(operator()), file: basename(path), partial })
    console.log(`Import des disponibilités BDPM depuis ${path} (${Date.now() - started} ms) : ${r.read} ligne(s) lue(s)`)
    console.log(`  créées      ${String(r.created).padStart(6)}`)
    console.log(`  modifiées   ${String(r.updated).padStart(6)}`)
    console.log(`  résolues    ${String(r.resolved).padStart(6)}`)
    console.log(`  inchangées  ${String(r.unchanged).padStart(6)}`)
    console.log(`  ignorées    ${String(r.ignored).padStart(6)}   (remise à disposition sans déclaration importée en cours)`)
    console.log(`  écartées    ${String(r.skipped.length).padStart(6)}   (couvertes par une autre déclaration en cours, du laboratoire en général)`)
    console.log(`  rejetées    ${String(r.rejected.length).padStart(6)}`)
    if (!r.reconciled) console.log(partial ? '  fichier partiel : les déclarations importées absentes du fichier sont laissées en l’état' : '  aucune ligne utilisable : les déclarations importées absentes du fichier sont laissées en l’état')
    for (const s of r.skipped) console.log(`  écartée ligne ${s.line} (CIS ${s.cis}${s.cip13 ? ` CIP13 ${s.cip13}` : ''}) : ${s.reason}`)
    for (const x of r.rejected) console.log(`  rejetée ligne ${x.line} (CIS ${x.cis || '?'}${x.cip13 ? ` CIP13 ${x.cip13}` : ''}) : ${x.reason}`)
    if (verbose) for (const c of r.changes) console.log(`  ${c.action.padEnd(9)} ${c.declarationId}  CIS ${c.cis}${c.cip13 ? ` CIP13 ${c.cip13}` : ''}${c.line ? ` (ligne ${c.line})` : ''}`)
  } finally {
    await database.close()
  }
}

main(resolve(file)).catch((err: unknown) => {
  console.error(`Import interrompu, rien n’a été modifié : ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
