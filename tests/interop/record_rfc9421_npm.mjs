// Records a command request signed by npm's `http-message-signatures`.
//
// The fixture `crates/agentrail-wire/tests/fixtures/rfc9421_npm.json` is
// what this prints; the Rust tests verify it. Regenerate with:
//
//   mkdir -p /tmp/npmhms && (cd /tmp/npmhms && npm install http-message-signatures@1.0.6)
//   NODE_PATH=/tmp/npmhms/node_modules node tests/interop/record_rfc9421_npm.mjs > crates/agentrail-wire/tests/fixtures/rfc9421_npm.json
//
// The library's defaults are kept (label `sig`, its default parameters
// keyid, alg, created and expires, expires 300 s after created); the
// request adds what agentrail requires: the covered components, a nonce
// and the network id as `tag`.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(process.env.NODE_PATH + '/');
const { httpbis } = require('http-message-signatures');

const SEED = Buffer.alloc(32, 8);
const NETWORK = 'agentrail:agentrail.log/0011223344556677';
const CREATED = 1767225600;
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function didKey(publicKey) {
  const data = Buffer.concat([Buffer.from([0xed, 0x01]), publicKey]);
  let number = BigInt('0x' + data.toString('hex'));
  let text = '';
  while (number > 0n) {
    text = BASE58[Number(number % 58n)] + text;
    number /= 58n;
  }
  return 'did:key:z' + text;
}

// PKCS#8 of an Ed25519 seed: the fixed prefix, then the 32 bytes.
const privateKey = crypto.createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), SEED]),
  format: 'der',
  type: 'pkcs8',
});
const publicKey = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(12);
const keyid = didKey(publicKey);
const body = JSON.stringify({
  type: 'transfer',
  from: keyid,
  to: keyid,
  amount: '1000000',
  idempotency_key: 'npm-fixture',
});
const digest = 'sha-256=:' + crypto.createHash('sha256').update(body).digest('base64') + ':';
const request = {
  method: 'POST',
  url: 'http://127.0.0.1:8402/v1/commands',
  headers: { 'Content-Digest': digest, 'Content-Type': 'application/json' },
};
const signed = await httpbis.signMessage(
  {
    key: { id: keyid, alg: 'ed25519', sign: async (data) => crypto.sign(null, data, privateKey) },
    fields: ['@method', '@path', 'content-digest'],
    params: ['keyid', 'alg', 'created', 'expires', 'nonce', 'tag'],
    paramValues: { created: new Date(CREATED * 1000), nonce: 'npm-fixture-1', tag: NETWORK },
  },
  request,
);
console.log(JSON.stringify({
  library: 'npm http-message-signatures 1.0.6',
  seed_hex: SEED.toString('hex'),
  keyid,
  network: NETWORK,
  created: CREATED,
  method: 'POST',
  path: '/v1/commands',
  body,
  content_digest: digest,
  signature_input: signed.headers['Signature-Input'],
  signature: signed.headers['Signature'],
}, null, 2));
