import '../diffusion/db.ts'
import { pipelineRoutes } from '../diffusion/routes.ts'

/**
 * DP-Alertes Labo: public-health alerts from a lab to the chain. The diffusion pipeline it shares with recalls
 * (src/diffusion: drafting, ANSM validation, broadcast, read tracking, report), without batches nor blocking; recipients by category and
 * region. Registered with prefix '/v1'. Its scheduled work is registered by registerRecallJobs.
 */
const alertRoutes = pipelineRoutes('alert')
export default alertRoutes
