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
    shot(page, "3-approvals")
    row.get_by_role("button", name=f"Approve payment {approval}").click()
    expect(notice).to_have_text(f"Payment #{approval} approved.")
    expect(page.locator("#approvals-empty")).to_be_visible()
    assert to_usd(client.balance(vendor.did).available.root) == Decimal("7")
    assert to_usd(client.balance(agent.did).available.root) == Decimal("43")

    # A second one declined: its money returns.
    pending = client.transfer(agent, vendor.did, "6", memo="too much", category="data")
    declined = next(e.root.approval_id for e in pending.events if e.root.type == "payment_pending")
    page.locator(f'#approvals-table tr[data-approval="{declined}"]').get_by_role("button", name="Decline").click()
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
    shot(page, "4-activity")

    view(page, "Channels")
    shot(page, "5-records")

    view(page, "Morning report")
    page.get_by_role("button", name="Build the report").click()
    expect(page.locator("#report-proven")).to_have_text(re.compile(r"^(\d+) of \1 against"))
    expect(page.locator("#report-summary")).to_contain_text("7.00 USD")
    shot(page, "6-report")

    view(page, "Operator")
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
