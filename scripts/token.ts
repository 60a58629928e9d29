// Prints a development token: npm run token -- --role pharmacy --org 750100010 [--sub alice] [--hours 12]
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/platform/config.ts'
import { ROLES, type Role } from '../src/platform/db/schema.ts'
import { signDevToken } from '../src/platform/tokens.ts'

const { values } = parseArgs({ options: { role: { type: 'string' }, org: { type: 'string' }, sub: { type: 'string' }, hours: { type: 'string', default: '12' } } })
if (!values.role || !ROLES.includes(values.role as Role) || !values.org) {
  console.error(`usage: npm run token -- --role <${ROLES.join('|')}> --org <identifier> [--sub user] [--hours 12]`)
  process.exit(2)
}
console.log(signDevToken(loadConfig(), { role: values.role as Role, org: values.org, sub: values.sub, expiresIn: Number(values.hours) * 3600 }))
