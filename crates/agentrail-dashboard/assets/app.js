// The dashboard: the owner's view of its agents, approvals, money and
// proofs, and the operator's view of the node. Everything the node returns
// is written with textContent (never as HTML). Commands are signed here
// with keys this page cannot read back (wire.js).

import * as wire from "./wire.js";

const $ = (selector) => document.querySelector(selector);
const POLL_MS = 2000;
const DAY_S = 86400;

// ---- state --------------------------------------------------------------------

const app = {
  health: null,
  logKey: null, // the pinned key, parsed
  keys: [], // {did, name, role, privateKey, created}
  principal: "",
  journalLen: -1,
  view: "keys",
  history: new Map(), // did -> {buffer, before, done}: the activity list's paging
  receipts: new Map(), // index -> Promise<{ok, text}>
  metricsBefore: null,
  openSessions: new Set(), // agents whose sessions are shown
  pendingProofs: new Map(), // approval id -> Promise<{ok, text}>
  agents: [],
  logKeyMismatch: false,
  shown: new Set(), // history entries listed in the activity view
};

// Views redrawn by themselves when the ledger changes; the others (long
// lists one reads) say that there is news and wait for the reader.
const LIVE = new Set(["keys", "agents", "approvals", "operator"]);

// ---- rendering helpers ----------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function usd(atomic) {
  return el("span", { class: "money", title: `${atomic} atomic units` }, `${wire.formatUsd(atomic)} USD`);
}

function when(seconds) {
  const date = new Date(Number(seconds) * 1000);
  if (!Number.isSafeInteger(Number(seconds)) || Number.isNaN(date.getTime())) return el("span", { text: "—" });
  return el(
    "time",
    { datetime: date.toISOString(), title: date.toISOString().replace(".000Z", " UTC").replace("T", " ") },
    date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }),
  );
}

// Names the owner gave: its keys', and those of agents and sessions it
// registered by did:key (kept in this browser only).
function nameOf(did) {
  const key = app.keys.find((k) => k.did === did);
  if (key) return key.name;
  if (app.health && did === app.health.operator) return "the node's operator";
  return names()[did] || null;
}

function names() {
  try {
    return JSON.parse(localStorage.getItem("agentrail.names") || "{}");
  } catch {
    return {};
  }
}

function remember(did, name) {
  if (!name) return;
  localStorage.setItem("agentrail.names", JSON.stringify({ ...names(), [did]: name }));
}

function who(did) {
  if (!did) return el("span", { text: "—" });
  const name = nameOf(did);
  const short = did.length > 24 ? `${did.slice(0, 14)}…${did.slice(-6)}` : did;
  return el("span", { class: "who", title: did }, name ? `${name} ` : "", el("code", { text: short }));
}

function card(title, ...body) {
  return el("div", { class: "card" }, el("h4", { text: title }), ...body);
}

function dl(pairs) {
  return el(
    "dl",
    {},
    pairs.filter(Boolean).flatMap(([term, value]) => [
      el("dt", { text: term }),
      el("dd", {}, typeof value === "string" ? value : value),
    ]),
  );
}

// ---- errors in words --------------------------------------------------------------

const PLAIN = {
  grant_widens: "The new mandate would allow more than the one above it; a grant can only narrow.",
  insufficient_funds: "The account does not hold enough money for this.",
  per_payment_limit_exceeded: "The amount is above the mandate's limit per payment.",
  daily_budget_exceeded: "This would pass the mandate's daily budget.",
  budget_exceeded: "This would pass the mandate's total budget.",
  approval_required: "Only the principal may commit a payment this large.",
  approval_not_pending: "This payment was already decided, or it expired.",
  approval_not_found: "The ledger has no payment waiting under this number.",
  grant_revoked: "This key's mandate was revoked.",
  grant_expired: "This key's mandate has expired.",
  not_authorized: "This key may not do that.",
  unknown_identity: "The ledger does not know this key: register it first.",
  already_registered: "This key is registered already.",
  signature_expired: "The signature is too old for the node's clock: check this computer's clock.",
  signature_invalid: "The node could not verify the signature.",
  nonce_reused: "The node saw this request already.",
  faucet_disabled: "The faucet exists only on a node in dev mode.",
  rate_limited: "Too many requests from this key: wait a moment.",
  overloaded: "The node is busy: try again in a moment.",
  invalid_field: "A field of the request is not acceptable.",
  too_many_delegations: "The agent has as many live sessions as it may have.",
};

class Refusal extends Error {
  constructor(status, code, message, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

function explain(error) {
  if (error instanceof Refusal) {
    const plain = Object.hasOwn(PLAIN, error.code) ? PLAIN[error.code] : null;
    const param = error.param ? ` (field: ${error.param})` : "";
    return `Refused: ${plain ? plain + " " : ""}The node said: “${error.message}”${param} [${error.code}]`;
  }
  return error instanceof Error ? error.message : String(error);
}

function notify(text, kind = "error") {
  const notice = $("#notice");
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = false;
  notice.dataset.kind = kind;
}

function clearNotice() {
  $("#notice").hidden = true;
}

async function guarded(action) {
  clearNotice();
  try {
    return await action();
  } catch (error) {
    notify(explain(error));
    return undefined;
  }
}

// ---- the node -----------------------------------------------------------------------

async function get(path, kind = "json") {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    const error = body?.error || {};
    throw new Refusal(response.status, error.code || `http_${response.status}`, error.message || response.statusText, error.param);
  }
  return kind === "text" ? response.text() : response.json();
}

async function getOrNull(path) {
  try {
    return await get(path);
  } catch (error) {
    if (error instanceof Refusal && error.status === 404) return null;
    throw error;
  }
}

// The network id a signature binds: the pinned log's, never only what
// the node says (a node must not choose which ledger a signature is for).
function network() {
  if (!app.logKey) throw new Error("Pin the log key first (Keys view).");
  if (app.logKeyMismatch) {
    throw new Error("The node serves another log key than the one pinned here: nothing is signed until you pin the key you trust (Keys view).");
  }
  const pinned = "agentrail:" + app.logKey.name;
  if (app.health && app.health.network !== pinned) {
    throw new Error(`The node speaks for ${app.health.network}, not the pinned ${pinned}: nothing is signed.`);
  }
  return pinned;
}

function keyOf(did) {
  const key = app.keys.find((k) => k.did === did);
  if (!key) throw new Error(`This browser holds no key for ${did}.`);
  return key;
}

// Signs a command with a key held here and posts it; returns the outcome.
async function command(signerDid, body) {
  const key = keyOf(signerDid);
  const bytes = wire.encoder.encode(JSON.stringify(body));
  const headers = await wire.signRequest(
    key.privateKey,
    key.did,
    network(),
    "POST",
    "/v1/commands",
    bytes,
    Math.floor(Date.now() / 1000),
  );
  const response = await fetch("/v1/commands", { method: "POST", headers, body: bytes });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = answer?.error || {};
    throw new Refusal(response.status, error.code || `http_${response.status}`, error.message || response.statusText, error.param);
  }
  await refresh(true);
  return answer;
}

function idempotencyKey(prefix) {
  return `${prefix}-${wire.randomNonce()}`;
}

// ---- keys (IndexedDB) -----------------------------------------------------------------

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("agentrail-dashboard", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("keys", { keyPath: "did" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const transaction = db.transaction("keys", mode);
    const request = work(transaction.objectStore("keys"));
    transaction.oncomplete = () => resolve(request?.result);
    transaction.onerror = () => reject(transaction.error);
  });
}

async function loadKeys() {
  app.keys = ((await store("readonly", (s) => s.getAll())) || []).sort((a, b) => a.created - b.created);
}

async function keepKey(record) {
  if (app.keys.some((k) => k.did === record.did)) throw new Error("This browser holds that key already.");
  await store("readwrite", (s) => s.add({ ...record, created: Date.now() }));
  await loadKeys();
  if (navigator.storage?.persist) navigator.storage.persist();
}

function offerBackup(name, did, backup) {
  const link = el("a", {
    href: URL.createObjectURL(new Blob([backup], { type: "application/json" })),
    download: `${name.replace(/[^A-Za-z0-9_-]+/g, "-") || "key"}.key`,
    class: "button",
    id: "backup-link",
  }, `Download the key file of ${name}`);
  const where = $("#backup");
  // The seed lives in this link until the owner says the file is safe.
  const done = el("button", {
    type: "button",
    class: "danger",
    onclick: () => {
      URL.revokeObjectURL(link.href);
      where.replaceChildren();
      where.hidden = true;
    },
  }, "I saved it: forget the backup");
  where.replaceChildren(
    el("strong", { text: "Back it up now. " }),
    "This page cannot show this key again. ",
    link,
    " ",
    done,
    el("br"),
    el("code", { class: "wrap", text: did }),
  );
  where.hidden = false;
}

async function newKey(name, role) {
  const { did, privateKey, backup } = await wire.generateKey();
  await keepKey({ did, name, role, privateKey });
  offerBackup(name, did, backup);
  return did;
}

// ---- the pinned log key ----------------------------------------------------------------

async function pinLogKey(text, how) {
  const parsed = await wire.parseLogKey(text);
  localStorage.setItem("agentrail.logKey", parsed.text);
  localStorage.setItem("agentrail.logKeyPinned", JSON.stringify({ at: Date.now(), how }));
  app.logKey = parsed;
  app.logKeyMismatch = false;
  app.receipts.clear();
  // Another log: what the page saw of the old one says nothing of it.
  localStorage.removeItem("agentrail.checkpoint");
}

async function checkLogKey() {
  const served = (await get("/v1/log/key", "text")).trim();
  const pinned = localStorage.getItem("agentrail.logKey");
  if (!pinned) {
    await pinLogKey(served, "first use");
  } else {
    app.logKey = await wire.parseLogKey(pinned);
    app.logKeyMismatch = pinned !== served;
    if (app.logKeyMismatch) {
      notify(`The node now serves another log key than the one pinned here. Receipts are checked against the pinned key, and nothing is signed until you pin one (Keys view). Served: ${served}`);
    }
  }
  const info = JSON.parse(localStorage.getItem("agentrail.logKeyPinned") || "{}");
  $("#logkey-pinned").textContent = app.logKey.text;
  $("#logkey-when").textContent = info.at
    ? `Pinned on ${new Date(info.at).toLocaleString()} (${info.how}).`
    : "";
}

// ---- receipts --------------------------------------------------------------------------

function sameJson(a, b) {
  return wire.canonical(a) === wire.canonical(b);
}

// The largest checkpoint this browser verified, {size, root}, kept across
// visits: every newer one must extend it (a consistency proof), every
// older one must be a prefix of it, or the log was rewritten.
async function trackCheckpoint(checkpoint) {
  const seen = JSON.parse(localStorage.getItem("agentrail.checkpoint") || "null");
  const root = wire.toBase64(checkpoint.root);
  if (!seen) {
    localStorage.setItem("agentrail.checkpoint", JSON.stringify({ size: String(checkpoint.size), root }));
    return;
  }
  const seenSize = BigInt(seen.size);
  if (seenSize === checkpoint.size) {
    if (seen.root !== root) throw new Error(`the log was rewritten: two different roots for size ${seen.size}`);
    return;
  }
  const [small, large] = seenSize < checkpoint.size
    ? [{ size: seenSize, root: wire.fromBase64(seen.root) }, checkpoint]
    : [checkpoint, { size: seenSize, root: wire.fromBase64(seen.root) }];
  const proof = await get(`/v1/log/proof/consistency?from=${small.size}&to=${large.size}`);
  const hashes = proof.proof.map(wire.fromBase64);
  if (!(await wire.verifyConsistency(small.size, large.size, small.root, large.root, hashes))) {
    app.rewritten = true;
    throw new Error(`the log was rewritten: size ${large.size} does not extend size ${small.size}`);
  }
  if (checkpoint.size > seenSize) {
    localStorage.setItem("agentrail.checkpoint", JSON.stringify({ size: String(checkpoint.size), root }));
  }
}

// Verifies the receipt of entry `item.index` once, then checks every time
// that the proven entry is exactly `item`.
async function proveEntry(item) {
  if (!app.receipts.has(item.index)) {
    const proving = (async () => {
      const receipt = await get(`/v1/receipts/${encodeURIComponent(item.index)}`);
      if (receipt.index !== item.index) throw new Error("the node sent the receipt of another entry");
      const proven = await wire.verifyReceipt(receipt, app.logKey, app.health?.operator);
      await trackCheckpoint(proven.checkpoint);
      return proven;
    })();
    app.receipts.set(item.index, proving);
    proving.catch(() => app.receipts.delete(item.index));
  }
  try {
    const { entry, command, treeSize } = await app.receipts.get(item.index);
    if (entry.signer !== item.signer || entry.time !== item.time || !sameJson(entry.events, item.events)) {
      return { ok: false, text: "the proven entry is not what the history shows" };
    }
    const contradiction = wire.contradicts(command, entry.events);
    if (contradiction) return { ok: false, text: contradiction };
    return { ok: true, text: `in the log: leaf ${item.index} of ${treeSize}, signed by ${nameOf(entry.signer) || entry.signer}`, entry };
  } catch (error) {
    return { ok: false, text: explain(error) };
  }
}

function proofBadge(item) {
  const badge = el("span", { class: "proof pending", role: "status", text: "checking proof…" });
  proveEntry(item).then(({ ok, text }) => {
    badge.className = `proof ${ok ? "ok" : "bad"}`;
    badge.textContent = ok ? `✓ proven ${text}` : `✗ not proven: ${text}`;
    badge.dataset.verified = ok ? "yes" : "no";
  });
  return badge;
}

// ---- events in words ---------------------------------------------------------------------

function describe(event) {
  const e = event;
  const parts = (...xs) => el("span", {}, ...xs);
  switch (e.type) {
    case "principal_registered": return parts("Registered principal ", who(e.principal));
    case "agent_registered": return parts("Registered agent ", who(e.agent));
    case "session_issued": return parts("Issued session ", who(e.session), " by ", who(e.agent));
    case "grant_revoked": return parts("Revoked ", who(e.subject));
    case "deposited": return parts("Deposit of ", usd(e.amount), " to ", who(e.to));
    case "withdrawn": return parts("Withdrawal of ", usd(e.amount), " from ", who(e.from));
    case "withdrawal_requested": return parts("Withdrawal of ", usd(e.amount), " requested from ", who(e.from));
    case "transferred": return parts("Paid ", usd(e.amount), " from ", who(e.from), " to ", who(e.to), e.memo ? ` — “${e.memo}”` : "");
    case "payment_pending": return parts("Payment of ", usd(e.amount), " to ", who(e.to), ` waits for approval #${e.approval_id}`);
    case "payment_approved": return parts(`Approved payment #${e.approval_id}`);
    case "payment_declined": return parts(`Declined payment #${e.approval_id}`);
    case "payment_expired": return parts(`Payment #${e.approval_id} expired unapproved`);
    case "mandate_charged": return parts("Mandate charged ", usd(e.amount), " for a payment off the ledger");
    case "hold_reserved": return parts("Held ", usd(e.amount), ` (hold ${e.hold_id})`);
    case "hold_released": return parts(`Hold ${e.hold_id} paid out`);
    case "hold_voided": case "hold_expired": return parts(`Hold ${e.hold_id} returned`);
    case "channel_opened": return parts(`Channel ${String(e.channel_id).slice(0, 12)}… opened to `, who(e.payee), " with ", usd(e.deposit));
    case "channel_collected": return parts("Channel payee collected ", usd(e.amount));
    case "channel_closed": return parts("Channel closed: ", usd(e.paid), " paid, ", usd(e.refunded), " returned");
    case "task_funded": return parts(`Task ${e.task_id} funded with `, usd(e.price ?? e.amount ?? "0"));
    case "task_disputed": return parts(`Task ${e.task_id} disputed`);
    case "dispute_resolved": return parts(`Dispute of task ${e.task_id} resolved`);
    case "subscription_created": return parts(`Subscription ${e.subscription_id} started`);
    case "subscription_collected": return parts(`Subscription ${e.subscription_id} collected `, usd(e.amount));
    case "order_placed": return parts(`Order ${e.order_id} placed`);
    case "bounty_posted": return parts(`Bounty ${e.bounty_id} posted`);
    default: return parts(String(e.type).replaceAll("_", " "));
  }
}

function entryItem(item) {
  try {
    return entryView(item);
  } catch (error) {
    return el("li", { class: "entry" }, `Entry #${item.index}: unreadable (${explain(error)})`);
  }
}

function entryView(item) {
  return el(
    "li",
    { class: "entry", "data-index": item.index },
    el("div", { class: "entry-head" }, when(item.time), el("span", { class: "index", text: `#${item.index}` }), " signed by ", who(item.signer)),
    el("ul", { class: "events" }, item.events.map((event) => el("li", {}, describe(event)))),
    proofBadge(item),
  );
}

// ---- the principal's tree ----------------------------------------------------------------

async function agentsOf(principal) {
  const agents = [];
  let offset = 0;
  for (let pages = 0; pages < 20 && offset !== null; pages++) {
    const page = await getOrNull(`/v1/principals/${encodeURIComponent(principal)}/agents?offset=${offset}&limit=50`);
    if (!page) return null;
    agents.push(...page.items);
    offset = page.next_offset;
  }
  // More than this page shows: said, not hidden.
  agents.truncated = offset !== null;
  app.agents = agents;
  return agents;
}

function limitsList(limits) {
  const amount = (v) => (v === undefined || v === null ? null : `${wire.formatUsd(v)} USD`);
  const list = (v, none) => (v === undefined || v === null ? none : v.length ? v.map((d) => nameOf(d) || d).join(", ") : "none");
  return dl([
    ["Per payment", amount(limits.max_per_payment)],
    ["Per day", amount(limits.daily_budget)],
    ["In total", amount(limits.total_budget) || "no total cap"],
    ["Approval above", amount(limits.approval_threshold) || "never asked"],
    ["Approval past, per day", amount(limits.daily_approval_threshold) || "never asked"],
    ["Payees", list(limits.allowed_payees, "anyone")],
    limits.denied_payees?.length ? ["Never pay", list(limits.denied_payees)] : null,
    ["Categories", list(limits.allowed_categories, "any")],
  ]);
}

function grantState(status) {
  if (status.revoked_at) return el("span", { class: "state bad", text: "revoked" });
  return status.active
    ? el("span", { class: "state ok", text: "active" })
    : el("span", { class: "state bad", text: "not active" });
}

function exposure(status) {
  const bound = status.exposure.bound;
  const why = {
    inactive: "it cannot act",
    total_budget: "bounded by its total budget",
    daily_budget: `its daily budget over ${bound.days} more day(s)`,
  }[bound.kind] || bound.kind.replaceAll("_", " ");
  return el("span", {}, usd(status.exposure.amount), ` (${why})`);
}

function grantCard(status, kind, extra) {
  const grant = status.grant.grant;
  const subject = grant.subject;
  return el(
    "article",
    { class: "grant", "data-did": subject, "aria-label": `${kind} ${nameOf(subject) || subject}` },
    el("header", {}, el("h4", {}, `${kind} `, who(subject), " "), grantState(status)),
    el("div", { class: "grant-body" },
      dl([
        ["Valid", el("span", {}, when(grant.not_before), " to ", when(grant.expires_at))],
        ["Spent today", usd(status.spent_today)],
        ["Spent in total", usd(status.spent_total)],
        ["Left today", usd(status.remaining_today)],
        status.remaining_total ? ["Left in total", usd(status.remaining_total)] : null,
        ["Worst case", exposure(status)],
      ]),
      limitsList(grant.limits),
    ),
    extra,
    !status.revoked_at && status.active !== undefined
      ? el("button", {
          type: "button",
          class: "danger",
          "data-action": "revoke",
          onclick: () => revoke(subject),
        }, `Revoke ${kind.toLowerCase()}`)
      : null,
  );
}

async function revoke(subject) {
  if (!confirm(`Revoke ${nameOf(subject) || subject} and every grant below it? This cannot be undone.`)) return;
  await guarded(async () => {
    await command(app.principal, { type: "revoke", subject });
    notify("Revoked.", "ok");
  });
}

async function renderAgents() {
  const principal = app.principal;
  const summary = $("#principal-summary");
  const list = $("#agents-list");
  if (!principal) {
    summary.replaceChildren(el("p", { class: "empty", text: "Create or import a principal key first (Keys view)." }));
    list.replaceChildren();
    return;
  }
  const [passport, agents] = await Promise.all([getOrNull(`/v1/passports/${principal}`), agentsOf(principal)]);
  if (!passport) {
    summary.replaceChildren(
      card("Not on the ledger yet", el("p", { text: "This principal is not registered." }),
        el("button", { type: "button", onclick: () => register(principal) }, "Register it")),
    );
    list.replaceChildren();
    return;
  }
  const live = (agents || []).filter((a) => a.grant.active);
  const worst = live.reduce((sum, a) => sum + wire.atomic(a.grant.exposure.amount), 0n);
  summary.replaceChildren(
    card("Principal", who(principal)),
    card("Available", usd(passport.balance?.available ?? "0")),
    card("Held", usd(passport.balance?.held ?? "0")),
    card("Agents", el("span", { text: `${live.length} active of ${(agents || []).length}${agents?.truncated ? " (the first 1,000 shown)" : ""}` })),
    card("Worst case, all agents", usd(worst.toString())),
  );
  const cards = [];
  for (const agent of agents || []) {
    const sessions = el("details", { class: "sessions" },
      el("summary", { text: `${agent.sessions.length} session(s)` }));
    // Kept open across redraws.
    sessions.open = app.openSessions.has(agent.did);
    sessions.addEventListener("toggle", async () => {
      if (sessions.open) app.openSessions.add(agent.did);
      else app.openSessions.delete(agent.did);
      if (!sessions.open || sessions.dataset.loaded) return;
      sessions.dataset.loaded = "yes";
      const grants = await Promise.all(agent.sessions.slice(0, 100).map((s) => getOrNull(`/v1/grants/${s}`)));
      sessions.append(...grants.filter(Boolean).map((g) => grantCard(g, "Session")));
    });
    cards.push(grantCard(agent.grant, "Agent", el("div", {},
      agent.balance ? el("p", {}, "Account: ", usd(agent.balance.available), " available, ", usd(agent.balance.held), " held") : null,
      sessions)));
  }
  list.replaceChildren(...(cards.length ? cards : [el("p", { class: "empty", text: "No agents yet." })]));
  const agentSelect = $("#session-agent");
  const current = agentSelect.value;
  agentSelect.replaceChildren(
    ...(agents || [])
      .filter((a) => app.keys.some((k) => k.did === a.did) && a.grant.active)
      .map((a) => el("option", { value: a.did }, nameOf(a.did) || a.did)),
  );
  if (current) agentSelect.value = current;
}

async function register(did) {
  await guarded(async () => {
    await command(did, { type: "register_principal", principal: did });
    notify("Registered.", "ok");
  });
}

// The limit fields of a mandate form, every limit a grant has.
const LIMIT_FIELDS = [
  ["max_per_payment", "Most per payment (USD)", true],
  ["daily_budget", "Most per UTC day (USD)", true],
  ["total_budget", "Most in total (USD, empty: no cap)", false],
  ["approval_threshold", "Ask me above (USD, empty: never)", false],
  ["daily_approval_threshold", "Ask me once a day's spending passes (USD, empty: never)", false],
];
const LIST_FIELDS = [
  ["allowed_payees", "Only these payees (did:key, one per line; empty: anyone)"],
  ["denied_payees", "Never these payees (did:key, one per line)"],
  ["allowed_categories", "Only these categories (one per line; empty: any)"],
];

function limitInputs(fieldset, prefix) {
  for (const [name, label, required] of LIMIT_FIELDS) {
    const id = `${prefix}-${name.replaceAll("_", "-")}`;
    fieldset.append(el("label", { for: id, text: label }), el("input", { id, name, inputmode: "decimal", required }));
  }
  for (const [name, label] of LIST_FIELDS) {
    const id = `${prefix}-${name.replaceAll("_", "-")}`;
    fieldset.append(el("label", { for: id, text: label }), el("textarea", { id, name, rows: 2, spellcheck: "false" }));
  }
}

function readLimits(prefix) {
  const limits = {};
  for (const [name, label, required] of LIMIT_FIELDS) {
    const value = $(`#${prefix}-${name.replaceAll("_", "-")}`).value.trim();
    if (!value && !required) continue;
    try {
      limits[name] = wire.toAtomic(value);
    } catch (error) {
      throw new Error(`${label}: ${error.message}`);
    }
  }
  for (const [name, label] of LIST_FIELDS) {
    const lines = $(`#${prefix}-${name.replaceAll("_", "-")}`).value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (name !== "allowed_categories") {
      const bad = lines.find((l) => !wire.isDid(l));
      if (bad) throw new Error(`${label}: ${bad} is not a did:key`);
    }
    if (lines.length) limits[name] = lines;
  }
  return limits;
}

async function chosenSubject(radioName, didInput, name, role) {
  const choice = document.querySelector(`input[name="${radioName}"]:checked`).value;
  if (choice === "did") {
    const did = $(didInput).value.trim();
    if (!wire.isDid(did)) throw new Error(`${did || "(empty)"} is not an Ed25519 did:key.`);
    return did;
  }
  return newKey(name, role);
}

async function registerAgent(event) {
  event.preventDefault();
  await guarded(async () => {
    if (!app.principal) throw new Error("Pick a principal first.");
    const limits = readLimits("agent");
    const days = Number($("#agent-days").value);
    if (!Number.isInteger(days) || days < 1 || days > 366) throw new Error("An agent's grant lasts 1 to 366 days.");
    const name = $("#agent-name").value.trim() || "agent";
    const subject = await chosenSubject("agent-key", "#agent-did", name, "agent");
    remember(subject, name);
    // A minute back: valid at once on a node whose clock is a little behind.
    const start = Math.floor(Date.now() / 1000) - 60;
    const document = {
      version: 1,
      issuer: app.principal,
      subject,
      role: "agent",
      limits,
      not_before: start,
      expires_at: start + days * DAY_S,
      nonce: wire.randomNonce(),
    };
    const grant = await wire.signGrant(keyOf(app.principal).privateKey, document);
    await command(app.principal, { type: "register_agent", grant });
    notify(`Agent ${name} registered.`, "ok");
  });
}

async function issueSession(event) {
  event.preventDefault();
  await guarded(async () => {
    const agent = $("#session-agent").value;
    if (!agent) throw new Error("Pick an agent whose key this browser holds.");
    const limits = readLimits("session");
    const hours = Number($("#session-hours").value);
    if (!Number.isInteger(hours) || hours < 1 || hours > 744) throw new Error("A session lasts 1 to 744 hours.");
    const sessionName = `${nameOf(agent) || "agent"} session`;
    const subject = await chosenSubject("session-key", "#session-did", sessionName, "session");
    remember(subject, sessionName);
    // Within the agent's own window, or the node refuses it as wider.
    const window = app.agents.find((a) => a.did === agent)?.grant.grant;
    const start = Math.max(Math.floor(Date.now() / 1000) - 60, window?.not_before ?? 0);
    const end = Math.min(start + hours * 3600, window?.expires_at ?? Infinity);
    const document = {
      version: 1,
      issuer: agent,
      subject,
      role: "session",
      limits,
      not_before: start,
      expires_at: end,
      nonce: wire.randomNonce(),
    };
    const grant = await wire.signGrant(keyOf(agent).privateKey, document);
    await command(agent, { type: "issue_session", grant });
    notify("Session issued.", "ok");
  });
}

// ---- approvals -----------------------------------------------------------------------------

async function pendingApprovals() {
  if (!app.principal) return [];
  const items = [];
  let after = 0;
  for (let pages = 0; pages < 50 && after !== null && items.length < 500; pages++) {
    const page = await getOrNull(`/v1/principals/${encodeURIComponent(app.principal)}/approvals?after=${after}&limit=100`);
    if (!page) return items;
    items.push(...page.items);
    after = page.next_after;
  }
  items.truncated = after !== null;
  return items;
}

async function decide(approvalId, type) {
  await guarded(async () => {
    await command(app.principal, { type, approval_id: approvalId });
    notify(type === "approve" ? `Payment #${approvalId} approved.` : `Payment #${approvalId} declined.`, "ok");
  });
}

// A pending payment as the log has it: the entry that asked for it, found
// in the paying account's history and proven, must state the amount, payee
// and signer the list shows (a node must not show 1 USD for 1,000).
function provePending(approval) {
  const id = approval.approval_id;
  if (!app.pendingProofs.has(id)) {
    app.pendingProofs.set(id, (async () => {
      let before;
      for (let pages = 0; pages < 5; pages++) {
        const page = await historyOf(approval.from, before, 200);
        const item = page.items.find((i) => i.events.some((e) => e.type === "payment_pending" && e.approval_id === id));
        if (item) {
          const proof = await proveEntry(item);
          if (!proof.ok) return proof;
          const e = item.events.find((x) => x.type === "payment_pending" && x.approval_id === id);
          if (e.from !== approval.from || e.to !== approval.to || e.amount !== approval.amount || item.signer !== approval.signer) {
            return { ok: false, text: "the log states another payment than this list" };
          }
          return { ok: true, text: `proven: leaf ${item.index}` };
        }
        if (page.next_before === null) break;
        before = page.next_before;
      }
      return { ok: false, text: "the entry that asked for it was not found" };
    })());
  }
  return app.pendingProofs.get(id);
}

function approvalRow(a) {
  const proof = el("span", { class: "proof pending", text: "checking…" });
  const approve = el("button", {
    type: "button",
    disabled: true,
    "aria-label": `Approve payment ${a.approval_id}`,
    onclick: async () => {
      const checked = await provePending(a);
      if (!checked.ok && !confirm(`This payment is not proven by the log (${checked.text}). Approve it anyway?`)) return;
      decide(a.approval_id, "approve");
    },
  }, "Approve");
  provePending(a).then((checked) => {
    proof.className = `proof ${checked.ok ? "ok" : "bad"}`;
    proof.textContent = checked.ok ? `✓ ${checked.text}` : `✗ ${checked.text}`;
    proof.dataset.verified = checked.ok ? "yes" : "no";
    approve.disabled = false;
  });
  return el("tr", { "data-approval": a.approval_id },
    el("td", { text: String(a.approval_id) }),
    el("td", {}, usd(a.amount), el("br"), proof),
    el("td", {}, who(a.from)),
    el("td", {}, who(a.to)),
    el("td", { text: [a.memo, a.category && `(${a.category})`].filter(Boolean).join(" ") }),
    el("td", {}, who(a.signer)),
    el("td", {}, when(a.expires_at)),
    el("td", { class: "actions" },
      approve,
      el("button", { type: "button", class: "danger", onclick: () => decide(a.approval_id, "decline"), "aria-label": `Decline payment ${a.approval_id}` }, "Decline"),
    ),
  );
}

async function renderApprovals(items) {
  const badge = $("#approvals-badge");
  badge.hidden = items.length === 0;
  badge.textContent = items.truncated ? `${items.length}+` : String(items.length);
  badge.setAttribute("aria-label", `${items.length} waiting`);
  if (app.view !== "approvals") return;
  $("#approvals-empty").hidden = items.length > 0;
  $("#approvals-more").hidden = !items.truncated;
  $("#approvals-table tbody").replaceChildren(...items.map(approvalRow));
}

// ---- activity --------------------------------------------------------------------------------

async function accountsOfPrincipal() {
  const agents = (await agentsOf(app.principal)) || [];
  return [app.principal, ...agents.map((a) => a.did)];
}

async function historyOf(did, before, limit) {
  const query = before === undefined || before === null ? `limit=${limit}` : `before=${before}&limit=${limit}`;
  return (await getOrNull(`/v1/accounts/${did}/history?${query}`)) || { items: [], next_before: null };
}

// Entries of all the principal's accounts, newest first, without repeats.
function merge(pages) {
  const seen = new Map();
  for (const item of pages.flat()) seen.set(item.index, item);
  return [...seen.values()].sort((a, b) => b.index - a.index);
}

async function renderActivity(more = false) {
  if (!app.principal) return;
  const accounts = await accountsOfPrincipal();
  const balances = await Promise.all(accounts.map((did) => getOrNull(`/v1/accounts/${did}/balance`)));
  $("#balances").replaceChildren(
    ...balances.filter(Boolean).map((b) =>
      card(nameOf(b.did) || "account", who(b.did), el("p", {}, usd(b.available), " available"), el("p", {}, usd(b.held), " held"))),
  );
  // One list merged from every account's history, newest first. An entry
  // is shown only once every account's older pages could hold nothing
  // newer: each account's unseen entries wait in its buffer.
  const PAGE = 50;
  if (!more) {
    app.history = new Map(accounts.map((did) => [did, { buffer: [], before: undefined, done: false }]));
    app.shown = new Set();
    $("#history").replaceChildren();
  }
  await Promise.all([...app.history.entries()].map(async ([did, account]) => {
    if (account.done || account.buffer.length >= PAGE) return;
    const page = await historyOf(did, account.before, PAGE);
    account.buffer.push(...page.items);
    account.before = page.next_before;
    account.done = page.items.length < PAGE || page.next_before === null;
  }));
  const open = [...app.history.values()].filter((a) => !a.done);
  const cutoff = open.length ? Math.max(...open.map((a) => a.buffer.at(-1)?.index ?? -1)) : -1;
  const ready = [];
  for (const account of app.history.values()) {
    while (account.buffer.length && account.buffer[0].index >= cutoff) ready.push(account.buffer.shift());
  }
  const items = merge([ready]).filter((item) => !app.shown.has(item.index));
  for (const item of items) app.shown.add(item.index);
  $("#history").append(...items.map(entryItem));
  $("#history-more").hidden = !open.length && [...app.history.values()].every((a) => !a.buffer.length);
  await renderCharts(accounts);
}

// What an event paid out of an account: transfers, channel and
// subscription collects, and mandate charges for payments off the ledger.
// A collect split by a listing pays its parts, not the payee alone.
function spending(e) {
  switch (e.type) {
    case "transferred": return [{ from: e.from, to: e.to, amount: wire.atomic(e.amount) }];
    case "channel_collected":
      if (Array.isArray(e.parts) && e.parts.length) {
        return e.parts.map((part) => ({ from: e.from, to: part.to, amount: wire.atomic(part.amount) }));
      }
      return [{ from: e.from, to: e.payee, amount: wire.atomic(e.amount) }];
    case "subscription_collected": case "mandate_charged":
      return [{ from: e.from, to: e.payee, amount: wire.atomic(e.amount) }];
    default: return [];
  }
}

// The chart's group for payees past the largest few (no did:key or
// address can be spelled so).
const OTHERS = "(others)";

// Spending per UTC day per agent (or per payee), and per payee, from the
// accounts' history: payments out of the principal's accounts to others.
async function renderCharts(accounts) {
  const days = Number($("#chart-days").value);
  const today = Math.floor(Date.now() / 1000 / DAY_S);
  const since = (today - days + 1) * DAY_S;
  const mine = new Set(accounts);
  const byPayee = $("#chart-group").value === "payee";
  let truncated = false;
  const perDay = new Map(); // "day|group" -> atomic
  const perGroup = new Map();
  const perPayee = new Map();
  for (const did of accounts) {
    let before;
    for (let pages = 0; ; pages++) {
      if (pages === 10) {
        truncated = true;
        break;
      }
      const page = await historyOf(did, before, 200);
      for (const item of page.items) {
        if (item.time < since) continue;
        for (const spent of item.events.flatMap(spending)) {
          if (spent.from !== did || mine.has(spent.to)) continue;
          const group = byPayee ? spent.to : did;
          const key = `${Math.floor(item.time / DAY_S)}|${group}`;
          perDay.set(key, (perDay.get(key) || 0n) + spent.amount);
          perGroup.set(group, (perGroup.get(group) || 0n) + spent.amount);
          perPayee.set(spent.to, (perPayee.get(spent.to) || 0n) + spent.amount);
        }
      }
      if (page.next_before === null || !(page.items.at(-1)?.time >= since)) break;
      before = page.next_before;
    }
  }
  const colors = ["#1f6feb", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777"];
  // The largest groups get a colour each; the rest share the last one.
  const ranked = [...perGroup.entries()].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0)).map(([g]) => g);
  const spenders = ranked.slice(0, colors.length - 1);
  const others = ranked.slice(colors.length - 1);
  if (others.length) {
    for (const [key, value] of [...perDay.entries()]) {
      const [day, group] = key.split("|");
      if (others.includes(group)) perDay.set(`${day}|${OTHERS}`, (perDay.get(`${day}|${OTHERS}`) || 0n) + value);
    }
    spenders.push(OTHERS);
  }
  const dayTotals = [];
  for (let d = today - days + 1; d <= today; d++) {
    dayTotals.push(spenders.reduce((sum, did) => sum + (perDay.get(`${d}|${did}`) || 0n), 0n));
  }
  const max = dayTotals.reduce((m, v) => (v > m ? v : m), 0n);
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  const width = 640;
  const height = 180;
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 24}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Spending per day over the last ${days} days`);
  const bar = width / days;
  for (let i = 0; i < days; i++) {
    const d = today - days + 1 + i;
    let y = height;
    spenders.forEach((did, s) => {
      const value = perDay.get(`${d}|${did}`) || 0n;
      if (value === 0n || max === 0n) return;
      // Pixel heights only: the amounts stay exact in the table below.
      const h = Number((value * BigInt(height) * 1000n) / max) / 1000;
      const rect = document.createElementNS(svgNs, "rect");
      rect.setAttribute("x", String(i * bar + 2));
      rect.setAttribute("y", String(y - h));
      rect.setAttribute("width", String(bar - 4));
      rect.setAttribute("height", String(h));
      rect.setAttribute("fill", colors[s % colors.length]);
      const title = document.createElementNS(svgNs, "title");
      title.textContent = `${new Date(d * DAY_S * 1000).toISOString().slice(0, 10)}: ${nameOf(did) || did} ${wire.formatUsd(value)} USD`;
      rect.append(title);
      svg.append(rect);
      y -= h;
    });
    if (i % Math.ceil(days / 7) === 0) {
      const label = document.createElementNS(svgNs, "text");
      label.setAttribute("x", String(i * bar + 2));
      label.setAttribute("y", String(height + 16));
      label.setAttribute("font-size", "11");
      label.textContent = new Date(d * DAY_S * 1000).toISOString().slice(5, 10);
      svg.append(label);
    }
  }
  const legend = el("ul", { class: "legend" }, spenders.map((did, s) =>
    el("li", {}, el("span", { class: "swatch", "data-color": s % colors.length }), did === OTHERS ? `${others.length} others` : nameOf(did) || did.slice(0, 16))));
  const rows = [];
  for (let d = today; d > today - days; d--) {
    for (const did of spenders) {
      const value = perDay.get(`${d}|${did}`);
      if (value) rows.push(el("tr", {}, el("td", { text: new Date(d * DAY_S * 1000).toISOString().slice(0, 10) }), el("td", {}, did === OTHERS ? OTHERS : who(did)), el("td", {}, usd(value.toString()))));
    }
  }
  $("#chart-agents").replaceChildren(
    spenders.length ? svg : el("p", { class: "empty", text: "No payments in this window." }),
    truncated ? el("p", { class: "hint bad", text: "An account has more than 2,000 entries in this window: only the newest are counted." }) : null,
    legend,
    rows.length ? el("details", {}, el("summary", { text: "The figures" }),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "UTC day" }), el("th", { text: byPayee ? "Payee" : "Agent" }), el("th", { text: "Spent" }))), el("tbody", {}, rows))) : null,
  );
  const payees = [...perPayee.entries()].sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0));
  const top = payees[0]?.[1] || 0n;
  $("#chart-payees").replaceChildren(
    payees.length
      ? el("ul", { class: "bars" }, payees.map(([did, value]) => {
          const share = top === 0n ? 0 : Number((value * 1000n) / top) / 10;
          return el("li", {}, who(did), el("meter", { min: "0", max: "100", value: String(share), "aria-label": "share of the largest" }), usd(value.toString()));
        }))
      : el("p", { class: "empty", text: "No payees in this window." }),
  );
}

// ---- records -----------------------------------------------------------------------------------

const RECORD_KINDS = [
  ["channel_id", "Channel", "/v1/channels/"],
  ["task_id", "Task", "/v1/tasks/"],
  ["subscription_id", "Subscription", "/v1/subscriptions/"],
  ["order_id", "Order", "/v1/orders/"],
  ["bounty_id", "Bounty", "/v1/bounties/"],
  ["hold_id", "Hold", "/v1/holds/"],
];

// A record's plain fields (and those of its nested objects, such as its
// terms), each shown as what it is: an identity, a time or an amount.
function summaryOf(view) {
  const pairs = [];
  const add = (key, value) => {
    if (value === null || typeof value === "object") return;
    const text = String(value);
    let shown = text;
    if (wire.isDid(text)) shown = who(text);
    else if (/(_at|deadline|_until)$/.test(key) && /^\d+$/.test(text)) shown = when(value);
    else if (/^(deposit|collected|amount|price|budget|paid|refunded|held|total|stake|payout|refund)$/.test(key) && /^\d+$/.test(text)) shown = usd(text);
    pairs.push([key.replaceAll("_", " "), shown]);
  };
  for (const [key, value] of Object.entries(view)) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [inner, innerValue] of Object.entries(value)) add(inner, innerValue);
    } else add(key, value);
  }
  return dl(pairs.slice(0, 16));
}

async function renderRecords() {
  if (!app.principal) return;
  const accounts = await accountsOfPrincipal();
  const pages = await Promise.all(accounts.map((did) => historyOf(did, undefined, 200)));
  const found = new Map();
  for (const item of merge(pages.map((p) => p.items))) {
    for (const e of item.events) {
      for (const [field, kind, path] of RECORD_KINDS) {
        if (typeof e[field] === "string" && !found.has(`${kind}:${e[field]}`)) {
          found.set(`${kind}:${e[field]}`, { kind, id: e[field], path, disputed: e.type.includes("disput") });
        }
      }
      if (e.type.includes("disput")) {
        const key = [...found.keys()].find((k) => k.endsWith(`:${e.task_id || e.order_id}`));
        if (key) found.get(key).disputed = true;
      }
    }
  }
  const cards = await Promise.all(
    [...found.values()].slice(0, 60).map(async (record) => {
      const view = await getOrNull(record.path + encodeURIComponent(record.id));
      return el("article", { class: "record" },
        el("h4", {}, `${record.kind} `, el("code", { text: record.id.length > 24 ? record.id.slice(0, 20) + "…" : record.id }),
          record.disputed ? el("span", { class: "state bad", text: " disputed" }) : null),
        view ? summaryOf(view) : el("p", { text: "no longer held by the ledger" }));
    }),
  );
  $("#records").replaceChildren(...(cards.length ? cards : [el("p", { class: "empty", text: "None yet." })]));
}

// ---- the morning report ---------------------------------------------------------------------------

async function buildReport(event) {
  event?.preventDefault();
  await guarded(async () => {
    if (!app.principal) throw new Error("Pick a principal first.");
    const since = Math.floor(new Date($("#report-since").value).getTime() / 1000);
    if (!Number.isFinite(since)) throw new Error("Pick a time.");
    const accounts = await accountsOfPrincipal();
    let incomplete = false;
    const pages = await Promise.all(accounts.map(async (did) => {
      const items = [];
      let before;
      for (let pages = 0; ; pages++) {
        const page = await historyOf(did, before, 200);
        items.push(...page.items.filter((i) => i.time >= since));
        if (page.next_before === null || !(page.items.at(-1)?.time >= since)) break;
        if (pages === 4) {
          incomplete = true;
          break;
        }
        before = page.next_before;
      }
      return items;
    }));
    const items = merge(pages).reverse();
    const mine = new Set(accounts);
    let spent = 0n;
    let received = 0n;
    let waiting = 0;
    for (const item of items) {
      for (const e of item.events) {
        for (const paid of spending(e)) {
          if (mine.has(paid.from) && !mine.has(paid.to)) spent += paid.amount;
          if (mine.has(paid.to) && !mine.has(paid.from)) received += paid.amount;
        }
        if (e.type === "payment_pending") waiting++;
      }
    }
    const list = $("#report");
    list.replaceChildren(...items.map(entryItem));
    const proofs = await Promise.all(items.map(proveEntry));
    const proven = proofs.filter((p) => p.ok).length;
    $("#report-summary").replaceChildren(
      card("Entries", el("span", { text: String(items.length) })),
      card("Paid out", usd(spent.toString())),
      card("Received", usd(received.toString())),
      card("Asked for approval", el("span", { text: String(waiting) })),
      card("Proven", el("span", { id: "report-proven", class: proven === items.length ? "ok" : "bad", text: `${proven} of ${items.length} against the pinned log key` })),
      incomplete ? card("Not all read", el("span", { class: "bad", text: "An account has more than 1,000 entries since then: pick a later time." })) : null,
    );
  });
}

// ---- operator --------------------------------------------------------------------------------------

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (match) samples.push({ name: match[1], labels: match[2] || "", value: Number(match[3]) });
  }
  const one = (name) => samples.find((s) => s.name === name && !s.labels)?.value ?? 0;
  const labelled = (name) => samples.filter((s) => s.name === name).map((s) => [/"([^"]*)"/.exec(s.labels)?.[1] ?? "", s.value]);
  return { one, labelled };
}

function quantile(buckets, count, q) {
  if (count === 0) return null;
  const rank = q * count;
  const hit = buckets.find(([, cumulative]) => cumulative >= rank);
  return hit ? hit[0] : null;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

async function renderOperator() {
  const [health, metricsText, checkpoint] = await Promise.all([get("/v1/health"), get("/metrics", "text"), get("/checkpoint", "text")]);
  const m = parseMetrics(metricsText);
  const now = Date.now();
  const accepted = m.one("agentrail_commands_accepted_total");
  const before = app.metricsBefore;
  const rate = before ? ((accepted - before.accepted) * 1000) / (now - before.at) : null;
  app.metricsBefore = { accepted, at: now };
  const batches = m.one("agentrail_batches_total");
  const entries = m.one("agentrail_batch_entries_total");
  const buckets = m.labelled("agentrail_command_seconds_bucket").map(([le, c]) => [le, c]);
  const count = m.one("agentrail_command_seconds_count");
  const ms = (le) => (le === null ? "—" : le === "+Inf" ? "> 5 s" : `≤ ${Number(le) * 1000} ms`);
  let proven = "not checked";
  try {
    const opened = await wire.openCheckpoint(checkpoint, app.logKey);
    await trackCheckpoint(opened);
    proven = `✓ size ${opened.size}, signed by the pinned key, extends every checkpoint this browser saw`;
  } catch (error) {
    proven = `✗ ${error.message}`;
  }
  const files = m.labelled("agentrail_store_file_bytes");
  const cards = [
    card("Health", dl([["Status", health.status], ["Mode", health.dev ? "dev" : "production"], ["Network", health.network], ["Clock", when(health.clock)]])),
    card("Queue", dl([["In flight", String(m.one("agentrail_commands_in_flight"))], ["Refused, queue full", String(m.one("agentrail_queue_full_total"))], ["Rate limited", String(m.one("agentrail_rate_limited_total"))]])),
    card("Batches", dl([["Committed", String(batches)], ["Entries per batch", batches ? (entries / batches).toFixed(1) : "—"], ["Signature batches", String(m.one("agentrail_signature_batches_total"))]])),
    card("Throughput", dl([["Accepted", String(accepted)], ["Now", rate === null ? "measuring…" : `${rate.toFixed(1)} commands/s`], ["Clock entries", String(m.one("agentrail_ticks_total"))]])),
    card("Latency", dl([["p50", ms(quantile(buckets, count, 0.5))], ["p99", ms(quantile(buckets, count, 0.99))], ["Commands timed", String(count)]])),
    card("Storage", dl([["Journal entries", String(health.journal_len)], ...files.map(([file, n]) => [file, bytes(n)]), ["Last snapshot", m.one("agentrail_snapshot_bytes") ? bytes(m.one("agentrail_snapshot_bytes")) : "none since the start"], ["Snapshot pause", `${(m.one("agentrail_snapshot_pause_microseconds") / 1000).toFixed(1)} ms (longest ${(m.one("agentrail_snapshot_pause_max_microseconds") / 1000).toFixed(1)} ms)`]])),
    card("Checkpoint", el("p", { id: "checkpoint-proof", text: proven }), el("pre", { class: "wrap", text: checkpoint })),
  ];
  if (health.chain) {
    const c = health.chain;
    cards.push(card("Chain", dl([
      ["Chain id", String(c.binding?.chain_id ?? "—")],
      ["Vault", c.binding?.vault ?? "—"],
      ["Following", c.following ? "yes" : "no"],
      ["RPC", c.rpc_ok ? "up" : `down${c.last_error ? `: ${c.last_error}` : ""}`],
      ["Head block", String(c.head ?? "—")],
      ["Safe block", `${c.safe ?? "—"} (${c.confirmations} confirmations)`],
      ["Log size anchored in the vault", String(c.anchored_size ?? "none yet")],
      ["Vault deposits credited", String(c.deposits_credited)],
      ["Withdrawals not yet paid", String(c.pending_withdrawals)],
      ["Alarm", c.alarm ? c.alarm : "none"],
    ])));
  }
  $("#operator").replaceChildren(...cards);
  $("#rejections tbody").replaceChildren(
    ...m.labelled("agentrail_commands_rejected_total").map(([code, n]) => el("tr", {}, el("td", {}, el("code", { text: code })), el("td", { text: String(n) }))),
  );
}

// ---- keys view ---------------------------------------------------------------------------------------

async function renderKeys() {
  const rows = await Promise.all(
    app.keys.map(async (key) => {
      const passport = await getOrNull(`/v1/passports/${key.did}`).catch(() => null);
      const onLedger = passport ? passport.kind : "no";
      return el("tr", { "data-did": key.did },
        el("td", { text: key.name }),
        el("td", { text: key.role }),
        el("td", {}, el("code", { class: "wrap", text: key.did })),
        el("td", { text: onLedger }),
        el("td", { class: "actions" },
          key.role === "principal" && !passport
            ? el("button", { type: "button", onclick: () => register(key.did) }, `Register ${key.name}`)
            : null,
          key.role === "principal"
            ? el("button", { type: "button", onclick: () => choosePrincipal(key.did) }, "Use")
            : null,
          el("button", {
            type: "button",
            class: "danger",
            onclick: async () => {
              if (!confirm(`Forget the key of ${key.name} in this browser? Without its key file it is gone.`)) return;
              await store("readwrite", (s) => s.delete(key.did));
              await loadKeys();
              await refresh(true);
            },
          }, "Forget"),
        ),
      );
    }),
  );
  $("#keys-table tbody").replaceChildren(...rows);
  const select = $("#principal-select");
  const principals = app.keys.filter((k) => k.role === "principal");
  select.replaceChildren(
    ...(principals.length ? [] : [el("option", { value: "" }, "— no principal key yet —")]),
    ...principals.map((k) => el("option", { value: k.did }, k.name)),
  );
  if (!principals.some((k) => k.did === app.principal)) app.principal = principals[0]?.did || "";
  select.value = app.principal;
  $("#faucet-form").hidden = !app.health?.dev;
  if (!$("#faucet-to").value && app.principal) $("#faucet-to").value = app.principal;
}

function choosePrincipal(did) {
  app.principal = did;
  localStorage.setItem("agentrail.principal", did);
  refresh(true);
}

// ---- the loop -------------------------------------------------------------------------------------------

const RENDER = {
  keys: renderKeys,
  agents: renderAgents,
  approvals: async () => renderApprovals(await pendingApprovals()),
  activity: () => renderActivity(false),
  records: renderRecords,
  report: async () => {},
  operator: renderOperator,
};

// One redraw at a time: a call while one runs asks for one more after it
// (forced if any caller forced it), so no older answer is drawn last.
let running = null;
let again = null; // null, or whether the next run is forced

async function refresh(force = false) {
  if (running) {
    again = again === null ? force : again || force;
    return running;
  }
  running = (async () => {
    let forced = force;
    for (;;) {
      await refreshOnce(forced);
      if (again === null) break;
      forced = again;
      again = null;
    }
  })();
  try {
    await running;
  } finally {
    running = null;
  }
}

// Redraws the current view (and the approvals badge) when the journal
// grew, or at once when `force`.
async function refreshOnce(force) {
  try {
    app.health = await get("/v1/health");
  } catch (error) {
    $("#node-status").textContent = `The node does not answer: ${explain(error)}`;
    return;
  }
  $("#node-status").textContent = `Node ${app.health.status} · ${app.health.network} · ${app.health.journal_len} entries${app.health.dev ? " · dev mode" : ""}`;
  const grew = app.health.journal_len !== app.journalLen;
  if (!(force || grew || app.view === "operator")) return;
  try {
    await renderApprovals(await pendingApprovals());
    if (force || LIVE.has(app.view)) {
      $("#stale").hidden = true;
      if (app.view !== "approvals") await RENDER[app.view]();
    } else {
      $("#stale").hidden = false;
    }
    // Only once drawn: a redraw that failed is tried again.
    app.journalLen = app.health.journal_len;
  } catch (error) {
    notify(`This view could not be drawn: ${explain(error)}`);
  }
}

function show(view) {
  app.view = Object.hasOwn(RENDER, view) ? view : "keys";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${app.view}`;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === app.view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  refresh(true);
}

function bindForms() {
  limitInputs($("#agent-limits"), "agent");
  limitInputs($("#session-limits"), "session");
  for (const [radio, input] of [["agent-key", "#agent-did"], ["session-key", "#session-did"]]) {
    for (const option of document.querySelectorAll(`input[name="${radio}"]`)) {
      option.addEventListener("change", () => {
        $(input).disabled = document.querySelector(`input[name="${radio}"]:checked`).value !== "did";
      });
    }
  }
  $("#generate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      const name = $("#generate-name").value.trim();
      const role = $("#generate-role").value;
      const did = await newKey(name, role);
      $("#generate-name").value = "";
      if (role === "principal" && !app.principal) app.principal = did;
      await refresh(true);
      notify(`Key ${name} created. Download its key file now.`, "ok");
    });
  });
  $("#import-file").addEventListener("change", async () => {
    const file = $("#import-file").files[0];
    if (file && file.size < 4096) $("#import-text").value = await file.text();
  });
  $("#import-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      const text = $("#import-text").value;
      // The seed does not stay on the page, whatever happens next.
      $("#import-text").value = "";
      $("#import-file").value = "";
      const { did, privateKey } = await wire.importKeyFile(text);
      await keepKey({ did, name: $("#import-name").value.trim(), role: $("#import-role").value, privateKey });
      await refresh(true);
      notify("Key imported.", "ok");
    });
  });
  $("#faucet-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      const to = $("#faucet-to").value.trim();
      if (!wire.isDid(to)) throw new Error(`${to} is not a did:key.`);
      const response = await fetch("/v1/faucet", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ to, amount: wire.toAtomic($("#faucet-amount").value) }),
      });
      const answer = await response.json();
      if (!response.ok) throw new Refusal(response.status, answer.error.code, answer.error.message, answer.error.param);
      await refresh(true);
      notify("Deposited.", "ok");
    });
  });
  $("#logkey-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      await pinLogKey($("#logkey-input").value, "pinned by hand");
      await checkLogKey();
      notify("Log key pinned.", "ok");
    });
  });
  $("#agent-form").addEventListener("submit", registerAgent);
  $("#session-form").addEventListener("submit", issueSession);
  $("#withdraw-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(async () => {
      if (!app.principal) throw new Error("Pick a principal first.");
      const body = {
        type: "withdraw",
        from: app.principal,
        amount: wire.toAtomic($("#withdraw-amount").value),
        idempotency_key: idempotencyKey("withdraw"),
      };
      const to = $("#withdraw-to").value.trim();
      if (to) body.to = to;
      await command(app.principal, body);
      notify("Withdrawal signed and accepted.", "ok");
    });
  });
  $("#history-more").addEventListener("click", () => guarded(() => renderActivity(true)));
  for (const select of ["#chart-days", "#chart-group"]) {
    $(select).addEventListener("change", () => guarded(() => renderActivity(false)));
  }
  $("#report-form").addEventListener("submit", buildReport);
  $("#stale").addEventListener("click", () => (app.view === "report" ? buildReport() : refresh(true)));
  $("#principal-select").addEventListener("change", (event) => choosePrincipal(event.target.value));
  const since = new Date(Date.now() - DAY_S * 1000);
  since.setMinutes(since.getMinutes() - since.getTimezoneOffset());
  $("#report-since").value = since.toISOString().slice(0, 16);
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
}

async function main() {
  bindForms();
  try {
    await loadKeys();
  } catch (error) {
    notify(`This browser cannot keep keys here (IndexedDB): ${explain(error)}`);
  }
  app.principal = localStorage.getItem("agentrail.principal") || "";
  try {
    await checkLogKey();
  } catch (error) {
    notify(`The node's log key could not be read: ${explain(error)}`);
  }
  show(location.hash.slice(1) || (app.keys.length ? "agents" : "keys"));
  setInterval(() => {
    if (document.visibilityState === "visible") refresh(false);
  }, POLL_MS);
}

main();
