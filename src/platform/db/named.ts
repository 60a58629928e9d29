/**
 * Named prepared statements inside Kysely's transactions.
 *
 * Kysely sends every statement unnamed, so PostgreSQL parses and plans it on every call. For the few statements
 * that a storm runs hundreds of times a second inside transactions (an audit entry, a publication, an alert), the
 * planning cost as much as the execution (pg_stat_statements during the alert storm: 0.2-0.4 ms of planning per
 * statement). node-postgres names a statement when given a name, and then parses it once per connection; Kysely
 * has no way to pass one, so the general pool's clients (NamingClient) look the statement's text up among those
 * that executeNamed registered. PostgreSQL's default plan choice then settles on the generic plan once it costs no
 * more than the custom ones, so planning stops too. On the embedded database the statement runs as any other.
 */
import { type Kysely, type QueryResult, type RawBuilder } from 'kysely'
import pg from 'pg'

/** Statement text → name, and the reverse (a name keeps one text). */
const nameOfText = new Map<string, string>()
const textOfName = new Map<string, string>()

/**
 * Runs `query` as the named statement `name`. Its text must not vary between calls (values as parameters, no
 * interpolated lists): a second text under the same name throws, which the tests would show.
 */
export async function executeNamed<R>(db: Kysely<any>, name: string, query: RawBuilder<R>): Promise<QueryResult<R>> {
  const compiled = query.compile(db)
  const known = textOfName.get(name)
  if (known === undefined) {
    textOfName.set(name, compiled.sql)
    nameOfText.set(compiled.sql, name)
  } else if (known !== compiled.sql) {
    throw new Error(`named statement ${name}: its text changed between two calls`)
  }
  return db.executeQuery(compiled)
}

/** The general pool's client: a registered text is sent as its named statement (see above). */
export class NamingClient extends pg.Client {
  // pg's query() has many overloads; Kysely calls query(text, values) and the pool calls it with a config object.
  override query(...args: any[]): any {
    const [config, values] = args
    const name = typeof config === 'string' ? nameOfText.get(config) : undefined
    if (name && args.length === 2) return (super.query as any)({ name, text: config, values })
    return (super.query as any)(...args)
  }
}
