import { generateKeyPairSync } from 'node:crypto'
import { compactVerify, importJWK } from 'jose'
import t from 'tap'
import { digestOf, loadSigningKey, signReceipt } from '../src/eprescription/receipts.ts'

t.test('the signing key from configuration (PEM), one line or several', async (t) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const a = await loadSigningKey(pem, true)
  const b = await loadSigningKey(pem.replace(/\n/g, '\\n'), true)
  t.equal(a.kid, b.kid, 'same key, same kid (JWK thumbprint)')
  t.equal(a.ephemeral, false)
  t.notOk('d' in a.publicJwk, 'the published JWK has no private part')
  const claims = { iss: 'x', iat: 1, prescriptionId: 'P', dispensation: 1, pharmacy: '750100010', acceptedAt: 'a', closedAt: 'b', digest: digestOf([]) }
  const jws = await signReceipt(a, claims)
  const verified = await compactVerify(jws, await importJWK(a.publicJwk, 'ES256'))
  t.same(JSON.parse(new TextDecoder().decode(verified.payload)), claims)
})

t.test('production refuses to start without a key; development generates one', async (t) => {
  await t.rejects(loadSigningKey(undefined, true), /RECEIPT_SIGNING_KEY/)
  const dev = await loadSigningKey(undefined, false)
  t.equal(dev.ephemeral, true)
  t.not(dev.kid, (await loadSigningKey(undefined, false)).kid)
  await t.rejects(loadSigningKey('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----', true))
})
