"""The web dashboard in a real browser: Debian's Chromium driven by
Playwright, against the real node binary. An owner creates its principal
key in the page, registers an agent, approves the payment a script's agent
makes above its threshold, sees the balance move and every receipt verify
in the browser, and is refused a widening grant with the node's code.

Screenshots of every view go to $AGENTRAIL_SCREENSHOTS (default
target/dashboard-screenshots), to be looked at."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from agentrail import Client, Key, to_usd

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("AGENTRAIL_SCREENSHOTS", ROOT / "target" / "dashboard-screenshots"))
CHROMIUM = os.environ.get("AGENTRAIL_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium reaches for Google's hosts at every start, which
# this machine's closed network refuses.
QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/chromium installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        yield browser
        browser.close()


class Watch:
    """What the page sent to the node and what it logged."""

    def __init__(self, page: Page) -> None:
        self.bodies: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.bodies.append(request.post_data or ""))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text
            else None,
        )


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def view(page: Page, name: str) -> None:
    page.get_by_role("link", name=re.compile(name)).click()


def test_an_owner_runs_its_agents_from_the_dashboard(node: str, browser: Browser, tmp_path: Path) -> None:
    client = Client(node)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    watch = Watch(page)
    page.goto(node + "/")
    expect(page.locator("#node-status")).to_contain_text("Node ok")
    # The page pinned the log key on first use.
    expect(page.locator("#logkey-pinned")).to_have_text(client.log_key().strip())

    # Keyboard first: the skip link, then the views.
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()

    # A principal key made in the page; its backup is a CLI key file.
    page.get_by_label("Name", exact=True).first.fill("Acme")
    with page.expect_download() as download:
        page.get_by_role("button", name="Create key").click()
        page.locator("#backup-link").click()
    backup = tmp_path / "acme.key"
    download.value.save_as(backup)
    owner_did = json.loads(backup.read_text())["did"]
    owner_seed = json.loads(backup.read_text())["seed"]
    assert Key.load(backup).did == owner_did
    row = page.locator(f'#keys-table tr[data-did="{owner_did}"]')
    expect(row).to_contain_text("Acme")
    # Kept as a key nothing can read back.
    extractable = page.evaluate(
        """() => new Promise((resolve) => {
            indexedDB.open("agentrail-dashboard").onsuccess = (e) => {
                const get = e.target.result.transaction("keys").objectStore("keys").getAll();
                get.onsuccess = () => resolve(get.result.map((k) => k.privateKey.extractable));
            };
        })"""
    )
    assert extractable == [False]

    row.get_by_role("button", name="Register Acme").click()
    expect(row).to_contain_text("principal")
    page.locator("#faucet-amount").fill("100")
    page.get_by_role("button", name="Deposit").click()
    expect(page.locator("#notice")).to_have_text("Deposited.")
    assert to_usd(client.balance(owner_did).available.root) == Decimal("100")

    # A CLI key file imported: a payee the owner also holds.
    vendor = Key.generate()
    vendor.save(tmp_path / "vendor.key")
    page.locator("#import-file").set_input_files(str(tmp_path / "vendor.key"))
    page.locator("#import-name").fill("Vendor")
    page.locator("#import-role").select_option("principal")
    page.get_by_role("button", name="Import key").click()
    expect(page.locator(f'#keys-table tr[data-did="{vendor.did}"]')).to_contain_text("Vendor")
    page.locator(f'#keys-table tr[data-did="{vendor.did}"]').get_by_role("button", name="Register Vendor").click()
    expect(page.locator(f'#keys-table tr[data-did="{vendor.did}"]')).to_contain_text("principal")
    page.locator("#principal-select").select_option(owner_did)
    shot(page, "1-keys")

    # The script's agent, registered by the owner with every limit.
    agent = Key.generate()
    view(page, "Agents")
    page.get_by_label("It has a key already").check()
    page.locator("#agent-did").fill(agent.did)
    page.locator("#agent-name").fill("buyer bot")
    page.get_by_label("Most per payment (USD)").first.fill("10")
    page.get_by_label("Most per UTC day (USD)").first.fill("50")
    page.locator("#agent-total-budget").fill("200")
    page.locator("#agent-approval-threshold").fill("5")
    page.locator("#agent-allowed-categories").fill("compute\ndata")
    page.locator("#agent-days").fill("30")
    page.get_by_role("button", name="Sign and register").click()
    expect(page.locator("#notice")).to_have_text("Agent buyer bot registered.")
    card = page.locator(f'#agents-list article[data-did="{agent.did}"]')
    expect(card).to_contain_text("active")
    expect(card).to_contain_text("10.00 USD")
    status = client.grant_status(agent.did)
    assert status.grant.grant.limits.approval_threshold.root == "5000000"

    # An agent whose key the page made: its session may not widen it.
    page.get_by_label("Create a key for it here").check()
    page.locator("#agent-name").fill("ops bot")
    page.locator("#agent-max-per-payment").fill("2")
    page.locator("#agent-daily-budget").fill("5")
    page.locator("#agent-total-budget").fill("")
    page.locator("#agent-approval-threshold").fill("")
    page.locator("#agent-allowed-categories").fill("")
    page.get_by_role("button", name="Sign and register").click()
    expect(page.locator("#notice")).to_have_text("Agent ops bot registered.")
    page.locator("#session-agent").select_option(label="ops bot")
    page.get_by_label("Its did:key", exact=True).check()
    session = Key.generate()
    page.locator("#session-did").fill(session.did)
    page.locator("#session-max-per-payment").fill("20")
    page.locator("#session-daily-budget").fill("5")
    page.get_by_role("button", name="Sign and issue").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("[grant_widens]")
    expect(notice).to_contain_text("a grant can only narrow")
    shot(page, "2-refused-widening")
    page.locator("#session-max-per-payment").fill("1")
    page.get_by_role("button", name="Sign and issue").click()
    expect(notice).to_have_text("Session issued.")
    assert client.grant_status(session.did).active
    page.locator(f'#agents-list article[data-did="{agent.did}"]').scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    # README's picture (docs/dashboard.png is one of these).
    page.screenshot(path=str(SHOTS / "readme.png"))

    # The owner revokes the session from the agent's card.
    ops = page.locator("#agents-list > article", has_text="ops bot")
    ops.locator("details.sessions > summary").click()
    session_card = ops.locator(f'article[data-did="{session.did}"]')
    expect(session_card).to_contain_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    session_card.get_by_role("button", name="Revoke session").click()
    expect(notice).to_have_text("Revoked.")
    assert client.grant_status(session.did).revoked_at is not None

    # The script's agent pays above its threshold: the payment waits.
    client.faucet(agent.did, "50")
    pending = client.transfer(agent, vendor.did, "7", memo="gpu hours", category="compute")
    approval = next(e.root.approval_id for e in pending.events if e.root.type == "payment_pending")
    # The reads the page polls, from the SDK too.
    waiting = client.pending_approvals(owner_did)
    assert [a.approval_id for a in waiting.items] == [approval]
    assert waiting.items[0].signer.root == agent.did
    assert client.agents_of(owner_did).total == 2
    view(page, "Approvals")
    row = page.locator(f'#approvals-table tr[data-approval="{approval}"]')
    expect(row).to_contain_text("7.00 USD")
    expect(row).to_contain_text("gpu hours")
    expect(page.locator("#approvals-badge")).to_have_text("1")
    # What it asks is checked against the log before it can be approved.
    expect(row.locator(".proof")).to_have_text(re.compile(r"^✓ proven: leaf \d+$"))
    shot(page, "3-approvals")
    row.get_by_role("button", name=f"Approve payment {approval}").click()
    expect(notice).to_have_text(f"Payment #{approval} approved.")
    expect(page.locator("#approvals-empty")).to_be_visible()
    assert to_usd(client.balance(vendor.did).available.root) == Decimal("7")
    assert to_usd(client.balance(agent.did).available.root) == Decimal("43")

    # A second one declined: its money returns.
    # A memo is the agent's text, shown as text: never markup, never script.
    hostile = '<img src=x onerror="window.pwned=1">too much'
    pending = client.transfer(agent, vendor.did, "6", memo=hostile, category="data")
    declined = next(e.root.approval_id for e in pending.events if e.root.type == "payment_pending")
    waiting_row = page.locator(f'#approvals-table tr[data-approval="{declined}"]')
    expect(waiting_row).to_contain_text(hostile)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#approvals-table img").count() == 0
    # Times in the viewer's zone, UTC on hover.
    assert waiting_row.locator("time").get_attribute("title").endswith("UTC")
    waiting_row.get_by_role("button", name="Decline").click()
    expect(notice).to_have_text(f"Payment #{declined} declined.")
    assert to_usd(client.balance(agent.did).available.root) == Decimal("43")

    # The balance moved, and every entry's receipt verifies in the page.
    view(page, "Activity")
    expect(page.locator("#balances")).to_contain_text("43.00 USD")
    entries = page.locator("#history > li")
    expect(entries.first).to_be_visible()
    expect(page.locator("#history .proof.pending")).to_have_count(0)
    count = entries.count()
    assert count >= 8
    expect(page.locator('#history .proof[data-verified="yes"]')).to_have_count(count)
    paid = page.locator("#history > li", has_text="Paid 7.00 USD")
    expect(paid).to_contain_text("✓ proven")
    expect(page.locator("#chart-agents svg rect")).to_have_count(1)
    expect(page.locator("#chart-payees")).to_contain_text("7.00 USD")
    page.locator("#chart-group").select_option("payee")
    expect(page.locator("#chart-agents .legend")).to_contain_text("Vendor")
    shot(page, "4-activity")
    # The owner withdraws (a dev ledger has no chain to pay out to).
    page.locator("#withdraw-amount").fill("10")
    page.get_by_role("button", name="Sign and withdraw").click()
    expect(notice).to_have_text("Withdrawal signed and accepted.")
    assert to_usd(client.balance(owner_did).available.root) == Decimal("90")
    expect(page.locator("#balances")).to_contain_text("90.00 USD")

    # What the agent opened shows with what the ledger holds of it now.
    client.open_channel(
        agent, deposit="3", payee=vendor.did, category="compute", expires_at=int(time.time()) + 7 * 86400
    )
    client.subscribe(
        agent, amount="1", payee=vendor.did, period="month", subscription_id="dash-sub", category="data"
    )
    view(page, "Channels")
    records = page.locator("#records")
    expect(records.locator("article", has_text="Channel")).to_contain_text("3.00 USD")
    expect(records.locator("article", has_text="Subscription")).to_contain_text("dash-sub")
    shot(page, "5-records")

    view(page, "Morning report")
    page.get_by_role("button", name="Build the report").click()
    expect(page.locator("#report-proven")).to_have_text(re.compile(r"^(\d+) of \1 against"))
    expect(page.locator("#report-summary")).to_contain_text("7.00 USD")
    shot(page, "6-report")

    # The keyboard reaches every view.
    page.get_by_role("link", name="Operator").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#checkpoint-proof")).to_contain_text("✓ size")
    expect(page.locator("#operator")).to_contain_text("journal.redb")
    shot(page, "7-operator")

    # Readable at phone width.
    page.set_viewport_size({"width": 390, "height": 844})
    view(page, "Agents")
    expect(card).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide at phone width"
    shot(page, "8-phone-agents")

    # No private key ever left the browser.
    for body in watch.bodies:
        assert owner_seed not in body
        assert vendor.seed().hex() not in body
    assert watch.errors == []
    context.close()


def test_the_page_refuses_to_be_framed_and_runs_no_inline_script(node: str) -> None:
    import httpx

    page = httpx.get(node + "/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert httpx.get(node + "/dashboard/nope.js").status_code == 404
    # The API's answers too: never sniffed into a page, never framed.
    health = httpx.get(node + "/v1/health")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in health.headers["content-security-policy"]


FORGED_LOG = r"""async () => {
  const w = await import("/dashboard/wire.js");
  const enc = new TextEncoder();
  // A log of one's own: its key, one leaf, its checkpoint.
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const name = "attacker.example/log";
  const raw = new Uint8Array([1, ...pub]);
  const keyId = (await w.sha256(new Uint8Array([...enc.encode(name + "\n"), ...raw]))).slice(0, 4);
  const logKey = await w.parseLogKey(`${name}+${w.toHex(keyId)}+${w.toBase64(raw)}`);
  const operator = w.didOfPublic(pub);
  const receiptOf = async (entry) => {
    const leaf = enc.encode(JSON.stringify(entry));
    const root = await w.leafHash(leaf);
    const text = `${name}\n1\n${w.toBase64(root)}\n`;
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, enc.encode(text)));
    const note = `${text}\n\u2014 ${name} ${w.toBase64(new Uint8Array([...keyId, ...sig]))}\n`;
    return { index: 0, tree_size: 1, leaf: w.toBase64(leaf), leaf_hash: w.toBase64(root), inclusion_proof: [], checkpoint: note };
  };
  const attempt = async (entry) => {
    try {
      const proven = await w.verifyReceipt(await receiptOf(entry), logKey, operator);
      return { ok: true, contradiction: w.contradicts(proven.command, proven.entry.events) };
    } catch (e) { return { ok: false, error: e.message }; }
  };
  const owner = await w.generateKey();
  const payee = (await w.generateKey()).did;
  const time = 1800000000;
  const signed = async (command, created = time) => {
    const body = enc.encode(JSON.stringify(command));
    const h = await w.signRequest(owner.privateKey, owner.did, "agentrail:" + name, "POST", "/v1/commands", body, created);
    return { kind: "http", method: "POST", path: "/v1/commands", content_digest: h["content-digest"],
             signature_input: h["signature-input"], signature: h.signature, body: w.toBase64(body) };
  };
  const pay = { type: "transfer", from: owner.did, to: payee, amount: "1000000", idempotency_key: "k" };
  const paid = (amount) => [{ type: "transferred", from: owner.did, to: payee, amount, signer: owner.did }];
  return {
    unknownKind: await attempt({ version: 1, time, signer: owner.did, request: { kind: "x" }, events: paid("1000000") }),
    noRequest: await attempt({ version: 1, time, signer: owner.did, events: paid("1000000") }),
    otherVersion: await attempt({ version: 2, time, signer: owner.did, request: await signed(pay), events: paid("1000000") }),
    honest: await attempt({ version: 1, time, signer: owner.did, request: await signed(pay), events: paid("1000000") }),
    inflated: await attempt({ version: 1, time, signer: owner.did, request: await signed(pay), events: paid("1000000000") }),
    stale: await attempt({ version: 1, time, signer: owner.did, request: await signed(pay, time - 3600), events: paid("1000000") }),
    clockByOwner: await attempt({ version: 1, time, signer: owner.did, request: { kind: "clock" }, events: [] }),
    clockByOperator: await attempt({ version: 1, time, signer: operator, request: { kind: "clock" }, events: [] }),
  };
}"""


def test_the_page_refuses_what_a_forged_log_would_have_it_show(node: str, browser: Browser) -> None:
    """A log whose key one holds can sign anything: the page still refuses
    an entry with no verifiable request, an old signature replayed into a
    new entry, a clock entry that is not the operator's, and events that
    contradict the command its signer signed."""
    page = browser.new_page()
    page.goto(node + "/")
    result = page.evaluate(FORGED_LOG)
    assert result["unknownKind"] == {"ok": False, "error": "the entry's request is of no known kind"}
    assert result["noRequest"] == {"ok": False, "error": "the entry's request is of no known kind"}
    assert result["otherVersion"] == {"ok": False, "error": "the leaf is not a journal entry of version 1"}
    assert result["honest"] == {"ok": True, "contradiction": None}
    assert result["inflated"] == {"ok": True, "contradiction": "its events are not the payment its signer signed"}
    assert result["stale"] == {"ok": False, "error": "the recorded request was not signed when the entry says"}
    assert result["clockByOwner"] == {"ok": False, "error": "a clock entry is the operator's and carries nothing"}
    assert result["clockByOperator"] == {"ok": True, "contradiction": None}
    page.close()


def test_the_page_notices_a_rewritten_log(node: str, browser: Browser) -> None:
    """The largest checkpoint the browser verified is kept: a log that does
    not extend it (here: a root for its size that the log never had) is
    called rewritten, and a log that does passes its consistency proof."""
    client = Client(node)
    principal = Key.generate()
    client.register_principal(principal)
    context = browser.new_context()
    page = context.new_page()
    page.goto(node + "/#operator")
    expect(page.locator("#checkpoint-proof")).to_contain_text("extends every checkpoint")
    seen = json.loads(page.evaluate("localStorage.getItem('agentrail.checkpoint')"))
    # The log grows: the newer checkpoint must extend the one kept.
    client.faucet(principal.did, "1")
    page.reload()
    expect(page.locator("#checkpoint-proof")).to_contain_text("extends every checkpoint")
    grown = json.loads(page.evaluate("localStorage.getItem('agentrail.checkpoint')"))
    assert int(grown["size"]) > int(seen["size"])
    # A kept checkpoint the log does not extend.
    forged = {"size": seen["size"], "root": "A" * 43 + "="}
    page.evaluate(f"localStorage.setItem('agentrail.checkpoint', {json.dumps(json.dumps(forged))})")
    page.reload()
    expect(page.locator("#checkpoint-proof")).to_contain_text("the log was rewritten")
    context.close()


def test_the_page_speaks_the_wire_format_of_docs_vectors(node: str, browser: Browser) -> None:
    """The browser's own implementation (wire.js, WebCrypto) against the
    known answers the Rust and Python implementations are held to, and the
    receipt check against a node's real receipts, tampered with."""
    vectors = json.loads((ROOT / "docs" / "vectors.json").read_text())
    client = Client(node)
    principal = Key.generate()
    client.register_principal(principal)
    index = client.faucet(principal.did, "1").index
    receipt = httpx_json(f"{node}/v1/receipts/{index}")
    page = browser.new_page()
    page.goto(node + "/")
    answers = page.evaluate(
        """async ({ v, receipt, logKey }) => {
        const w = await import("/dashboard/wire.js");
        const enc = new TextEncoder();
        const out = {};
        out.dids = v.keys.map((k) => w.didOfPublic(w.fromHex(k.public_key_hex)));
        out.publics = v.keys.map((k) => w.toHex(w.publicOfDid(k.did)));
        const key = async (seed) => {
          const k = v.keys.find((k) => k.seed_hex === seed);
          return (await w.importKeyFile(JSON.stringify({ did: k.did, seed }))).privateKey;
        };
        try {
          await w.importKeyFile(JSON.stringify({ did: v.keys[1].did, seed: v.keys[0].seed_hex }));
          out.mismatchedKeyFile = "accepted";
        } catch (e) { out.mismatchedKeyFile = e.message; }
        out.grantBytes = w.GRANT_PREFIX + w.canonical(v.grant.document);
        out.grantId = w.toHex(await w.sha256(enc.encode(out.grantBytes)));
        out.grantSignature = (await w.signGrant(await key(v.keys[0].seed_hex), v.grant.document)).signature;
        out.commandBytes = w.COMMAND_PREFIX + w.canonical(v.node_signed_command.signed.command);
        const r = v.request;
        out.request = await w.signRequest(await key(r.signer_seed_hex), v.keys.find((k) => k.seed_hex === r.signer_seed_hex).did,
          v.network.network_id, r.method, r.path, enc.encode(r.body_utf8), r.created, r.nonce);
        out.leafHashes = await Promise.all(v.merkle.entries_utf8.map(async (e) => w.toBase64(await w.leafHash(enc.encode(e)))));
        const proof = v.merkle.inclusion_proof_of_1_b64.map(w.fromBase64);
        const root = w.fromBase64(v.merkle.root_b64);
        const leaf1 = w.fromBase64(v.merkle.leaf_hashes_b64[1]);
        out.inclusion = await w.verifyInclusion(leaf1, 1n, 3n, proof, root);
        out.inclusionWrongIndex = await w.verifyInclusion(leaf1, 2n, 3n, proof, root);
        out.amounts = ["2.5", "0.000001", "1000000", "007.10"].map(w.toAtomic);
        out.refusedAmounts = ["1.0000001", "-1", "1e3", "", "0x10", "1,5"].map((a) => { try { w.toAtomic(a); return "accepted"; } catch { return "refused"; } });
        out.formatted = ["2500000", "1", "0", "123456789000000"].map(w.formatUsd);
        const pinned = await w.parseLogKey(logKey);
        out.receipt = (await w.verifyReceipt(receipt, pinned)).entry.events;
        const tamper = async (change) => {
          const copy = structuredClone(receipt);
          await change(copy);
          try { await w.verifyReceipt(copy, pinned); return "accepted"; } catch (e) { return e.message; }
        };
        const leaf = w.fromBase64(receipt.leaf);
        out.tampered = {
          leaf: await tamper((c) => { const b = leaf.slice(); b[b.length - 3] ^= 1; c.leaf = w.toBase64(b); }),
          leafAndHash: await tamper(async (c) => { const b = leaf.slice(); b[b.length - 3] ^= 1; c.leaf = w.toBase64(b); c.leaf_hash = w.toBase64(await w.leafHash(b)); }),
          index: await tamper((c) => { c.index = c.index === 0 ? 1 : c.index - 1; }),
          size: await tamper((c) => { c.tree_size += 1; }),
          checkpoint: await tamper((c) => { c.checkpoint = c.checkpoint.replace(/\\n(\\d+)\\n/, (m, n) => `\\n${Number(n) + 1}\\n`); }),
        };
        const other = await w.generateKey();
        try { await w.parseLogKey(logKey.replace(/\\+[0-9a-f]{8}\\+/, "+00000000+")); out.badKeyId = "accepted"; } catch (e) { out.badKeyId = e.message; }
        out.otherKey = other.did.startsWith("did:key:z");
        return out;
      }""",
        {"v": vectors, "receipt": receipt, "logKey": client.log_key().strip()},
    )
    assert answers["dids"] == [k["did"] for k in vectors["keys"]]
    assert answers["publics"] == [k["public_key_hex"] for k in vectors["keys"]]
    assert "is not the key of" in answers["mismatchedKeyFile"]
    assert answers["grantBytes"] == vectors["grant"]["signing_bytes_utf8"]
    assert answers["grantId"] == vectors["grant"]["grant_id"]
    assert answers["grantSignature"] == vectors["grant"]["signature_hex"]
    assert answers["commandBytes"] == vectors["node_signed_command"]["signing_bytes_utf8"]
    request = vectors["request"]
    assert answers["request"]["content-digest"] == request["content_digest"]
    assert answers["request"]["signature-input"] == request["signature_input"]
    assert answers["request"]["signature"] == request["signature"]
    assert answers["leafHashes"] == vectors["merkle"]["leaf_hashes_b64"]
    assert answers["inclusion"] is True and answers["inclusionWrongIndex"] is False
    assert answers["amounts"] == ["2500000", "1", "1000000000000", "7100000"]
    assert answers["refusedAmounts"] == ["refused"] * 6
    assert answers["formatted"] == ["2.50", "0.000001", "0.00", "123,456,789.00"]
    assert answers["receipt"] == [{"type": "deposited", "to": principal.did, "amount": "1000000"}]
    tampered = answers["tampered"]
    assert tampered["leaf"] == "the leaf hash is not the hash of the leaf"
    assert tampered["leafAndHash"] == "the inclusion proof does not lead to the signed root"
    assert tampered["index"] == "the inclusion proof does not lead to the signed root"
    assert tampered["size"] == "the receipt's tree size is not its checkpoint's"
    assert tampered["checkpoint"] == "the checkpoint's signature does not verify"
    assert answers["badKeyId"] == "the log key's id does not match its key"
    page.close()


def httpx_json(url: str) -> dict[str, object]:
    import httpx

    response = httpx.get(url)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result
