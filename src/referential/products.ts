import type { FastifyInstance } from 'fastify'

// Product look-up and search: see the referential issue (BDPM import, CIP13/GTIN/CIP7/CIS look-up, search).
export default async function productRoutes(_app: FastifyInstance) {}
