/** Serialization's routes, per actor: the alerts, the lab's streamed upload, the scanners' pack calls, the lab's side. */
import type { RoutePlugin } from '../platform/types.ts'
import alertRoutes from './alerts-routes.ts'
import labRoutes from './routes/lab.ts'
import packRoutes from './routes/packs.ts'
import uploadStreamRoutes from './upload-stream-routes.ts'

const routes: RoutePlugin = async (app) => {
  await app.register(alertRoutes)
  await app.register(uploadStreamRoutes)
  await app.register(packRoutes)
  await app.register(labRoutes)
}

export default routes
