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

// An amount of atomic units as the node writes it: decimal digits only
// (BigInt alone would also take "", "0x10" and " 1").
export function atomic(text) {
  if (typeof text !== "string" || !/^\d{1,39}$/.test(text)) {
    throw new WireError(`${JSON.stringify(text)} is not an amount of atomic units`);
  }
  return BigInt(text);
}

// "2500000" -> "2.50": two decimals at least, all that are not zero.
export function formatUsd(atomicText) {
  const n = typeof atomicText === "bigint" ? atomicText : atomic(String(atomicText));
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
  if (pkcs8.length !== 48 || !equalBytes(pkcs8.slice(0, 16), PKCS8_ED25519_PREFIX)) {
    throw new WireError("this browser exported an Ed25519 key in an unexpected form");
  }
  const seed = pkcs8.slice(16);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const did = didOfPublic(publicKey);
  const privateKey = await importSeed(seed, false);
  // The backup must be the key of the did: the kept copy signs, the did's
  // public key verifies.
  await probe(privateKey, did);
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
  const seed = fromHex(document.seed.toLowerCase());
  const privateKey = await importSeed(seed, false);
  seed.fill(0);
  await probe(privateKey, document.did);
  return { did: document.did, privateKey };
}

async function probe(privateKey, did) {
  const message = encoder.encode("agentrail key check");
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, privateKey, message);
  if (!(await verifyBy(publicOfDid(did), signature, message))) {
    throw new WireError(`the seed is not the key of ${did}`);
  }
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
  // The name becomes the network id signatures are tagged with: printable
  // ASCII with nothing a structured field would read as syntax.
  if (!/^[\x21-\x7e]+$/.test(name) || /["\\+]/.test(name)) {
    throw new WireError("a log key's name is printable ASCII without spaces, quotes, backslashes or +");
  }
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

// RFC 9162 §2.1.4.2: `second` extends `first`.
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (first > second) return false;
  if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
  if (first === 0n) return proof.length === 0;
  if (proof.length === 0) return false;
  let path = proof;
  if ((first & (first - 1n)) === 0n) path = [firstRoot, ...proof];
  let fn = first - 1n;
  let sn = second - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      fr = await node(c, fr);
      sr = await node(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await node(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot);
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

// The parameters after a signature's inner list: `;key=value` pairs, a
// value a quoted string or a bare token (RFC 8941), each key once.
function signatureParams(text) {
  const params = new Map();
  const pattern = /;([a-z*][a-z0-9_.*-]*)=("(?:[^"\\]|\\.)*"|[^;"]*)/y;
  let match;
  let at = 0;
  while (at < text.length && (match = pattern.exec(text))) {
    if (params.has(match[1])) throw new WireError(`the signature repeats ${match[1]}`);
    params.set(match[1], match[2].startsWith('"') ? match[2].slice(1, -1).replace(/\\(.)/g, "$1") : match[2]);
    at = pattern.lastIndex;
  }
  if (at !== text.length) throw new WireError("the signature's parameters are malformed");
  return params;
}

const RECORDED_WINDOW_S = 300 + 60;

// Checks the signed HTTP request a journal entry recorded: a POST of a
// command, its digest, its Ed25519 signature by the entry's signer for this
// network, made within the window of the entry's time. Returns the command.
async function verifyRecordedRequest(request, signer, network, time) {
  if (request.method !== "POST" || request.path !== "/v1/commands") {
    throw new WireError("the recorded request is not a command");
  }
  const body = fromBase64(request.body);
  if (request.content_digest !== (await contentDigest(body))) {
    throw new WireError("the recorded body does not match its digest");
  }
  const inputs = dictionaryMembers(request.signature_input);
  const signatures = new Map(dictionaryMembers(request.signature));
  let chosen = null;
  for (const [label, value] of inputs) {
    const inner = /^\(([^)]*)\)(.*)$/.exec(value);
    if (!inner) continue;
    const params = signatureParams(inner[2]);
    if (params.get("tag") === network) chosen = { label, value, components: inner[1], params };
  }
  if (!chosen) throw new WireError("the recorded request is not signed for this network");
  const values = new Map([
    ['"@method"', "POST"],
    ['"@path"', request.path],
    ['"content-digest"', request.content_digest],
  ]);
  const components = chosen.components.split(" ");
  if (components.length !== 3 || new Set(components).size !== 3 || !components.every((c) => values.has(c))) {
    throw new WireError("the recorded request covers other components");
  }
  const { params } = chosen;
  if (params.get("keyid") !== signer) throw new WireError("the recorded request is signed by another key");
  if (params.has("alg") && params.get("alg") !== "ed25519") throw new WireError("the recorded request names another algorithm");
  const created = Number(params.get("created"));
  if (!Number.isSafeInteger(created) || Math.abs(time - created) > RECORDED_WINDOW_S) {
    throw new WireError("the recorded request was not signed when the entry says");
  }
  if (params.has("expires") && !(time < Number(params.get("expires")) + 60)) {
    throw new WireError("the recorded request had expired when it was journaled");
  }
  const base =
    components.map((c) => `${c}: ${values.get(c)}`).join("\n") + `\n"@signature-params": ${chosen.value}`;
  const signature = /^:([A-Za-z0-9+/=]*):$/.exec(signatures.get(chosen.label) || "")?.[1];
  if (!signature) throw new WireError("the recorded signature is malformed");
  if (!(await verifyBy(publicOfDid(signer), fromBase64(signature), encoder.encode(base)))) {
    throw new WireError("the recorded request's signature does not verify");
  }
  try {
    return JSON.parse(decoder.decode(body));
  } catch {
    throw new WireError("the recorded body is not a command");
  }
}

export const COMMAND_PREFIX = "agentrail command v1\n";

// A receipt: the checkpoint signed by the pinned key, the leaf included
// under its root, and the entry's own signed request (or node-signed
// command) made by the entry's signer; a clock entry must be the
// operator's. Returns the journal entry, the command its signer signed
// (none for the clock), and the checkpoint it is proven under.
export async function verifyReceipt(receipt, key, operator) {
  for (const field of ["index", "tree_size"]) {
    if (!Number.isSafeInteger(receipt[field]) || receipt[field] < 0) {
      throw new WireError(`the receipt's ${field} is not a position in a log`);
    }
  }
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
  if (entry?.version !== 1 || !Number.isSafeInteger(entry.time) || !Array.isArray(entry.events)) {
    throw new WireError("the leaf is not a journal entry of version 1");
  }
  const network = "agentrail:" + checkpoint.origin;
  const request = entry.request || {};
  let command = null;
  if (request.kind === "http") {
    command = await verifyRecordedRequest(request, entry.signer, network, entry.time);
  } else if (request.kind === "node") {
    const signed = request.command;
    if (signed?.signer !== entry.signer) throw new WireError("the command was signed by another key");
    const bytes = encoder.encode(COMMAND_PREFIX + canonical(signed.command));
    if (!(await verifyBy(publicOfDid(entry.signer), fromHex(signed.signature), bytes))) {
      throw new WireError("the node-signed command's signature does not verify");
    }
    command = signed.command;
  } else if (request.kind === "clock") {
    if (Object.keys(request).length !== 1 || entry.signer !== operator) {
      throw new WireError("a clock entry is the operator's and carries nothing");
    }
  } else {
    throw new WireError("the entry's request is of no known kind");
  }
  return { entry, command, checkpoint, treeSize: checkpoint.size };
}

// What a command's own events must say, for the commands an owner reads
// most: a proven entry whose events contradict its signed command is not
// shown as proven. (Everything else the events say is the ledger's rules
// applied; `agentrail audit` replays them all.)
export function contradicts(command, events) {
  const first = events[0];
  if (!command || !first || first.type === "duplicate") return null;
  const same = (a, b) => String(a) === String(b);
  switch (command.type) {
    case "transfer":
      return ["transferred", "payment_pending"].includes(first.type) && same(first.from, command.from) && same(first.to, command.to) && same(first.amount, command.amount)
        ? null : "its events are not the payment its signer signed";
    case "approve":
      return first.type === "payment_approved" && same(first.approval_id, command.approval_id) ? null : "its events are not the approval signed";
    case "decline":
      return first.type === "payment_declined" && same(first.approval_id, command.approval_id) ? null : "its events are not the decline signed";
    case "withdraw":
      return ["withdrawn", "withdrawal_requested"].includes(first.type) && same(first.from, command.from) && same(first.amount, command.amount)
        ? null : "its events are not the withdrawal signed";
    case "register_agent":
      return first.type === "agent_registered" && same(first.agent, command.grant?.grant?.subject) ? null : "its events are not the agent signed";
    case "revoke":
      return first.type === "grant_revoked" && same(first.subject, command.subject) ? null : "its events are not the revocation signed";
    default:
      return null;
  }
}

export { encoder, decoder };
