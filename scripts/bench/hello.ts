// The baseline of every ratio: a bare Fastify hello world, on the same machine, in the same run.
// It also serves the "ceiling" of the scenarios that have a target: POST /fixed reads and parses the same JSON body
// as the service's route and answers, with no other work, the answer the service gave to that request (stored
// beforehand with PUT /fixed). No Fastify route of that shape can go faster on this machine.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/', async () => ({ hello: 'world' }))
let fixed = '{}'
app.put('/fixed', async (request) => {
  fixed = JSON.stringify(request.body)
  return { stored: fixed.length }
})
app.post('/fixed', async (_request, reply) => reply.type('application/json; charset=utf-8').send(fixed))
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
console.log(`listening ${address}`)
