/**
 * The referential: organisations, products (BDPM) and lab holders. Route files parse and shape; use cases hold
 * the rules and transactions; queries the SQL.
 */
import type { FastifyInstance } from 'fastify'
import labHolderRoutes from './routes/lab-holders.ts'
import organisationRoutes from './routes/organisations.ts'
import productRoutes from './routes/products.ts'
import type { Deps } from './use-cases/context.ts'

export default async function referential(app: FastifyInstance) {
  const deps: Deps = {
    db: app.db,
    now: () => app.now(),
    prepared: (name, sql, params) => app.database.prepared(name, sql, params),
    invalidateOrganisation: (id) => app.organisations.invalidate(id),
  }
  await app.register(organisationRoutes, { deps })
  await app.register(productRoutes, { deps })
  await app.register(labHolderRoutes, { deps })
}
