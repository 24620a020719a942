// The agentrail wire protocol in the browser (docs/protocol.md): did:key,
// exact amounts, RFC 8785 canonical JSON, signed grants, RFC 9421 signed
// requests, and receipts checked against a pinned log key (C2SP signed
// notes, RFC 9162 inclusion). Only WebCrypto: SHA-256 and Ed25519.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export class WireError extends Error {}

// ---- bytes ----------------------------------------------------------------

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new WireError("not lower-case hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toBase64(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

export function fromBase64(text) {
  // Strict: the alphabet and its padding, nothing else.
  if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new WireError("not base64");
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// ---- did:key ----------------------------------------------------------------

// base58btc is a few lines and the browser has none.
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function base58encode(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let text = "";
  while (n > 0n) {
    text = BASE58[Number(n % 58n)] + text;
    n /= 58n;
  }
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  return "1".repeat(zeros) + text;
}

function base58decode(text) {
  let n = 0n;
  for (const c of text) {
    const digit = BASE58.indexOf(c);
    if (digit < 0) throw new WireError(`${JSON.stringify(c)} is not a base58btc character`);
    n = n * 58n + BigInt(digit);
  }
  const body = [];
  while (n > 0n) {
    body.unshift(Number(n % 256n));
    n /= 256n;
  }
  let zeros = 0;
  while (zeros < text.length && text[zeros] === "1") zeros++;
  return Uint8Array.from([...new Array(zeros).fill(0), ...body]);
}

export function didOfPublic(publicKey) {
  if (publicKey.length !== 32) throw new WireError("an Ed25519 public key is 32 bytes");
  return "did:key:z" + base58encode(concat(Uint8Array.of(0xed, 0x01), publicKey));
}

export function publicOfDid(did) {
  if (typeof did !== "string" || !did.startsWith("did:key:z")) {
    throw new WireError("a did:key starts with did:key:z");
  }
  const data = base58decode(did.slice("did:key:z".length));
  if (data.length !== 34 || data[0] !== 0xed || data[1] !== 0x01) {
    throw new WireError("not an Ed25519 did:key");
  }
  return data.slice(2);
}

export function isDid(text) {
  try {
    publicOfDid(text);
    return true;
  } catch {
    return false;
  }
}

export async function verifyBy(publicKey, signature, message) {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

// ---- amounts ----------------------------------------------------------------

export const UNITS_PER_USD = 1_000_000n;
const DECIMALS = 6;

// "2.5" -> "2500000": exact, from text, never through a float.
export function toAtomic(text) {
  const value = String(text).trim();
  const match = /^(\d{1,20})(?:\.(\d{1,6}))?$/.exec(value);
  if (!match) {
    throw new WireError(
      `${JSON.stringify(value)} is not an amount: write dollars with at most ${DECIMALS} decimals, like 2.50`,
    );
  }
  const fraction = (match[2] || "").padEnd(DECIMALS, "0");
  const atomic = BigInt(match[1]) * UNITS_PER_USD + BigInt(fraction);
  if (atomic >= 1n << 128n) throw new WireError("the amount is too large");
  return atomic.toString();
}

// "2500000" -> "2.50": two decimals at least, all that are not zero.
export function formatUsd(atomic) {
  const n = BigInt(atomic);
  const sign = n < 0n ? "-" : "";
  const abs = n < 0n ? -n : n;
  const whole = abs / UNITS_PER_USD;
  let fraction = (abs % UNITS_PER_USD).toString().padStart(DECIMALS, "0").replace(/0+$/, "");
  fraction = fraction.padEnd(2, "0");
  return `${sign}${whole.toLocaleString("en-US")}.${fraction}`;
}

// ---- canonical JSON (RFC 8785) -------------------------------------------------

// Our documents hold strings, integers, booleans, null, arrays and objects.
// For those, JCS is ECMAScript's own serialization with object keys sorted
// by UTF-16 code units, which is what Array.prototype.sort compares.
export function canonical(value) {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      throw new WireError("a signed document holds integers only");
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
}

// ---- keys in the browser -------------------------------------------------------

const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");

async function importSeed(seed, extractable) {
  if (seed.length !== 32) throw new WireError("an Ed25519 seed is 32 bytes");
  return crypto.subtle.importKey(
    "pkcs8",
    concat(PKCS8_ED25519_PREFIX, seed),
    { name: "Ed25519" },
    extractable,
    ["sign"],
  );
}

// A new key: the page keeps a non-extractable copy; the caller offers
// `backup` (the CLI's key file, {"did", "seed"}) once, for safekeeping.
export async function generateKey() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const seed = pkcs8.slice(pkcs8.length - 32);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const did = didOfPublic(publicKey);
  const privateKey = await importSeed(seed, false);
  const backup = JSON.stringify({ did, seed: toHex(seed) }, null, 2) + "\n";
  seed.fill(0);
  pkcs8.fill(0);
  return { did, privateKey, backup };
}

// A CLI key file (`agentrail key generate`): {"did", "seed"}. The seed must
// be the key of the did: checked by a signature the did's key verifies.
export async function importKeyFile(text) {
  let document;
  try {
    document = JSON.parse(text);
  } catch {
    throw new WireError('a key file is JSON: {"did": …, "seed": …}');
  }
  if (typeof document?.did !== "string" || typeof document?.seed !== "string") {
    throw new WireError('a key file is JSON: {"did": …, "seed": …}');
  }
  const seed = fromHex(document.seed);
  const privateKey = await importSeed(seed, false);
  seed.fill(0);
  const probe = encoder.encode("agentrail key file check");
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, privateKey, probe);
  if (!(await verifyBy(publicOfDid(document.did), signature, probe))) {
    throw new WireError(`the seed is not the key of ${document.did}`);
  }
  return { did: document.did, privateKey };
}

export async function sign(privateKey, message) {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, privateKey, message));
}

// ---- signed documents and requests -------------------------------------------

export const GRANT_PREFIX = "agentrail grant v1\n";

export function randomNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return toBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// The wire form of a signed grant, {"grant", "signature"}.
export async function signGrant(privateKey, document) {
  const bytes = encoder.encode(GRANT_PREFIX + canonical(document));
  return { grant: document, signature: toHex(await sign(privateKey, bytes)) };
}

export async function contentDigest(body) {
  return "sha-256=:" + toBase64(await sha256(body)) + ":";
}

const COVERED = '("@method" "@path" "content-digest")';

export function signatureBase(method, path, digest, params) {
  return (
    `"@method": ${method.toUpperCase()}\n"@path": ${path}\n` +
    `"content-digest": ${digest}\n"@signature-params": ${params}`
  );
}

// The headers of a signed request over `body` (docs/protocol.md).
export async function signRequest(privateKey, did, network, method, path, body, created, nonce = randomNonce()) {
  const digest = await contentDigest(body);
  const params =
    `${COVERED};created=${created};nonce="${nonce}";keyid="${did}";` +
    `alg="ed25519";tag="${network}"`;
  const base = signatureBase(method, path, digest, params);
  const signature = await sign(privateKey, encoder.encode(base));
  return {
    "content-type": "application/json",
    "content-digest": digest,
    "signature-input": `sig1=${params}`,
    signature: `sig1=:${toBase64(signature)}:`,
  };
}

// ---- proofs -------------------------------------------------------------------

// A C2SP note verifier key: <name>+<key id hex>+<base64 0x01‖key>.
export async function parseLogKey(text) {
  // A note name has no "+"; the base64 key may.
  const [name, keyId, ...rest] = text.trim().split("+");
  const key = rest.join("+");
  if (!name || !keyId || !key) throw new WireError("a log key is <name>+<key id>+<base64 key>");
  const raw = fromBase64(key);
  if (raw.length !== 33 || raw[0] !== 1) throw new WireError("the log key is not an Ed25519 note key");
  const expected = (await sha256(concat(encoder.encode(name + "\n"), raw))).slice(0, 4);
  if (toHex(expected) !== keyId) throw new WireError("the log key's id does not match its key");
  return { name, keyId: expected, publicKey: raw.slice(1), text: text.trim() };
}

export async function openCheckpoint(note, key) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new WireError("a signed note has a blank line before its signatures");
  const text = note.slice(0, split + 1);
  for (const line of note.slice(split + 2).split("\n")) {
    if (line === "") continue;
    if (!line.startsWith("\u2014 ")) throw new WireError("a malformed signature line");
    const [signer, signature] = line.slice(2).split(" ");
    const raw = fromBase64(signature || "");
    if (signer !== key.name || !equalBytes(raw.slice(0, 4), key.keyId)) continue;
    if (!(await verifyBy(key.publicKey, raw.slice(4), encoder.encode(text)))) {
      throw new WireError("the checkpoint's signature does not verify");
    }
    const lines = text.split("\n");
    if (lines.length < 4 || lines[0] !== key.name) throw new WireError("the checkpoint names another log");
    if (!/^\d+$/.test(lines[1])) throw new WireError("the checkpoint's size is malformed");
    return { origin: lines[0], size: BigInt(lines[1]), root: fromBase64(lines[2]) };
  }
  throw new WireError("the checkpoint is not signed by the pinned log key");
}

async function node(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

export async function leafHash(leaf) {
  return sha256(concat(Uint8Array.of(0), leaf));
}

// RFC 9162 §2.1.3.2.
export async function verifyInclusion(hash, index, size, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let result = hash;
  for (const sibling of proof) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      result = await node(sibling, result);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      result = await node(result, sibling);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(result, root);
}

// Splits an RFC 8941 dictionary at its top-level commas (none inside a
// quoted string or an inner list).
function dictionaryMembers(text) {
  const members = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      members.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  members.push(text.slice(start).trim());
  return members.map((m) => {
    const eq = m.indexOf("=");
    return [m.slice(0, eq), m.slice(eq + 1)];
  });
}

// Checks the signed HTTP request a journal entry recorded: its digest and
// its Ed25519 signature by the entry's signer, for this network.
async function verifyRecordedRequest(request, signer, network) {
  const body = fromBase64(request.body);
  if (request.content_digest !== (await contentDigest(body))) {
    throw new WireError("the recorded body does not match its digest");
  }
  const inputs = dictionaryMembers(request.signature_input);
  const signatures = new Map(dictionaryMembers(request.signature));
  const [label, params] =
    inputs.find(([, params]) => params.includes(`;tag="${network}"`)) || [];
  if (!label) throw new WireError("the recorded request is not signed for this network");
  const components = /^\(([^)]*)\)/.exec(params)?.[1].split(" ") || [];
  const values = {
    '"@method"': request.method.toUpperCase(),
    '"@path"': request.path,
    '"content-digest"': request.content_digest,
  };
  if (components.length !== 3 || !components.every((c) => c in values)) {
    throw new WireError("the recorded request covers other components");
  }
  if (!params.includes(`;keyid="${signer}"`)) {
    throw new WireError("the recorded request is signed by another key");
  }
  const base =
    components.map((c) => `${c}: ${values[c]}`).join("\n") + `\n"@signature-params": ${params}`;
  const signature = /^:([A-Za-z0-9+/=]*):$/.exec(signatures.get(label) || "")?.[1];
  if (!signature) throw new WireError("the recorded signature is malformed");
  if (!(await verifyBy(publicOfDid(signer), fromBase64(signature), encoder.encode(base)))) {
    throw new WireError("the recorded request's signature does not verify");
  }
}

export const COMMAND_PREFIX = "agentrail command v1\n";

// A receipt: the checkpoint signed by the pinned key, the leaf included
// under its root, and the entry's own signed request (or node-signed
// command) made by the entry's signer. Returns the journal entry.
export async function verifyReceipt(receipt, key) {
  const checkpoint = await openCheckpoint(receipt.checkpoint, key);
  if (checkpoint.size !== BigInt(receipt.tree_size)) {
    throw new WireError("the receipt's tree size is not its checkpoint's");
  }
  const leaf = fromBase64(receipt.leaf);
  const hash = await leafHash(leaf);
  if (!equalBytes(hash, fromBase64(receipt.leaf_hash))) {
    throw new WireError("the leaf hash is not the hash of the leaf");
  }
  const proof = receipt.inclusion_proof.map(fromBase64);
  if (!(await verifyInclusion(hash, BigInt(receipt.index), checkpoint.size, proof, checkpoint.root))) {
    throw new WireError("the inclusion proof does not lead to the signed root");
  }
  let entry;
  try {
    entry = JSON.parse(decoder.decode(leaf));
  } catch {
    throw new WireError("the leaf is not a journal entry");
  }
  const network = "agentrail:" + checkpoint.origin;
  const request = entry.request || {};
  if (request.kind === "http") {
    await verifyRecordedRequest(request, entry.signer, network);
  } else if (request.kind === "node") {
    const signed = request.command;
    if (signed?.signer !== entry.signer) throw new WireError("the command was signed by another key");
    const bytes = encoder.encode(COMMAND_PREFIX + canonical(signed.command));
    if (!(await verifyBy(publicOfDid(entry.signer), fromHex(signed.signature), bytes))) {
      throw new WireError("the node-signed command's signature does not verify");
    }
  }
  return { entry, treeSize: checkpoint.size };
}

export { encoder, decoder };
