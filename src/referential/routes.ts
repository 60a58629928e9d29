import type { FastifyInstance } from 'fastify'
import organisationRoutes from './organisations.ts'
import productRoutes from './products.ts'

export default async function referential(app: FastifyInstance) {
  await app.register(organisationRoutes)
  await app.register(productRoutes)
}
