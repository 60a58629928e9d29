// npm run import:bdpm -- <folder>
// Loads the BDPM files found in <folder> (CIS_bdpm.txt, CIS_CIP_bdpm.txt, CIS_MITM.txt, CIS_CIP_Dispo_Spec.txt,
// CIS_GENER_bdpm.txt, CIS_COMPO_bdpm.txt, CIS_CPD_bdpm.txt, as downloaded from
// base-donnees-publique.medicaments.gouv.fr) into DATABASE_URL, or the embedded database.
// Rejected lines are listed and do not fail the run (exit 0); a missing folder or a database error exits 1.
import { userInfo } from 'node:os'
import { resolve } from 'node:path'
import { SYSTEM } from '../src/platform/audit.ts'
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { BDPM_FILES, type BdpmFile } from '../src/referential/rules/bdpm-format.ts'

const dir = process.argv.slice(2).find((a) => !a.startsWith('-'))
if (!dir) {
  console.error('Usage : npm run import:bdpm -- <dossier contenant les fichiers BDPM>')
  process.exit(1)
}

/** Who ran the import, for the audit trail. */
function operator() {
  try {
    return `import-bdpm:${userInfo().username}`
  } catch {
    return 'import-bdpm'
  }
}

async function main(folder: string) {
  const config = loadConfig()
  const database = await createDatabase({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR })
  try {
    const started = Date.now()
    const report = await importBdpmDirectory(database.db, folder, { ...SYSTEM, user: operator() })
    console.log(`Import BDPM depuis ${folder} (${Date.now() - started} ms) — fichiers : ${report.files.join(', ')}`)
    console.log('fichier                  lues   ajoutées  modifiées  inchangées  rejetées  retirées')
    for (const kind of Object.keys(BDPM_FILES) as BdpmFile[]) {
      const c = report[kind]
      if (!report.files.includes(BDPM_FILES[kind].name)) continue
      const cols = [c.read, c.inserted, c.updated, c.unchanged, c.rejected, c.removed].map((n, i) => String(n).padStart([6, 10, 11, 12, 10, 10][i]!))
      console.log(`${BDPM_FILES[kind].name.padEnd(24)}${cols.join('')}`)
    }
    if (report.files.includes(BDPM_FILES.genericGroups.name)) {
      console.log(`Membres de groupes génériques absents de ${BDPM_FILES.medicines.name} (conservés) : ${report.genericMembersWithoutMedicine}`)
    }
    console.log(`Médicaments sans laboratoire : ${report.medicinesWithoutLab}`)
    for (const h of report.unmappedHolders) console.log(`  ${h.holder ?? '(aucun titulaire)'} : ${h.medicines} médicament(s) — PUT /v1/lab-holders/{titulaire} pour l’associer`)
    if (report.rejected.length) {
      console.log(`Lignes rejetées : ${report.rejected.length}`)
      for (const r of report.rejected) console.log(`  ${r.file}:${r.line} : ${r.reason}`)
    } else console.log('Aucune ligne rejetée.')
  } finally {
    await database.close()
  }
}

main(resolve(dir)).catch((err: unknown) => {
  console.error(`Import interrompu, rien n’a été modifié : ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
