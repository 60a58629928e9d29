import '../recalls/db.ts'
import { pipelineRoutes } from '../recalls/pipeline-routes.ts'

/**
 * DP-Alertes Labo: public-health alerts from a lab to the chain. The recall pipeline (drafting, ANSM
 * validation, broadcast, read tracking, report) without batches nor blocking; recipients by category and
 * region. Registered with prefix '/v1'. Its scheduled work is registered by registerRecallJobs.
 */
const alertRoutes = pipelineRoutes('alert')
export default alertRoutes
