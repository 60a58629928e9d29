/** Serialization's routes, per actor: the alerts, the lab's streamed upload, the scanners' pack calls, the lab's side. */
import type { RoutePlugin } from '../platform/types.ts'
import alertRoutes from './routes/alerts.ts'
import labRoutes from './routes/lab.ts'
import packRoutes from './routes/packs.ts'
import uploadStreamRoutes from './routes/upload-stream.ts'

const routes: RoutePlugin = async (app) => {
  await app.register(alertRoutes)
  await app.register(uploadStreamRoutes)
  await app.register(packRoutes)
  await app.register(labRoutes)
}

export default routes
