"""x402's `exact` scheme on a real anvil, against code nobody here wrote: the
official x402 SDK's client pays the Rust provider (examples/text-stats) and
the Python one (agentrail's ASGI paywall) by EIP-3009; `agentrail pay-url`
and agentrail's Python x402 client pay the SDK's FastAPI server, which
settles through `agentrail facilitator`, within the agent's mandate. Every
header is checked against x402's published schema."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from eth_account.messages import encode_typed_data
from fastapi import FastAPI
from web3 import Web3
from x402 import x402Client, x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.clients import x402HttpxClient
from x402.http.middleware.fastapi import PaymentMiddlewareASGI
from x402.mechanisms.evm.exact import ExactEvmServerScheme, register_exact_evm_client
from x402.schemas import PaymentRequired
from x402.http.clients.httpx import PaymentError as X402PaymentError

from agentrail import Client, Key, Limits
from agentrail.payer import ChannelPayer
from agentrail.x402_scheme import ExactMandate, paying_client

from conftest import ROOT, Provider, free_port, node_binary
from test_paywall import conforms

NETWORK = "eip155:31337"
STATS_PRICE = 1_000
ERC20 = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


@dataclass
class Chain:
    rpc: str
    token: str
    web3: Web3
    folder: Path

    def balance(self, address: str) -> int:
        contract = self.web3.eth.contract(address=Web3.to_checksum_address(self.token), abi=ERC20)
        return int(contract.functions.balanceOf(Web3.to_checksum_address(address)).call())

    def account(self, name: str, eth: int = 0, usd: str | None = None) -> tuple[Any, Path]:
        """A fresh EVM account, its key written where the CLI reads it, with
        gas money and test dollars as asked."""
        account = Account.create()
        path = self.folder / f"{name}.evm"
        path.write_text("0x" + bytes(account.key).hex())
        if eth:
            self.web3.provider.make_request("anvil_setBalance", [account.address, hex(eth * 10**18)])
        if usd is not None:
            agentrail("chain", "mint", "--rpc", self.rpc, "--evm-key", str(self.folder / "deployer.evm"),
                      "--to", account.address, "--amount", usd, "--token", self.token)
        return account, path


def agentrail(*args: str) -> dict[str, Any]:
    done = subprocess.run([str(node_binary()), "--json", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return dict(json.loads(lines[-1]))


def evm_tool(name: str) -> Path:
    folder = os.environ.get("AGENTRAIL_EVM_TOOLS", str(ROOT / ".tools" / "evm" / "bin"))
    tool = Path(folder) / name
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run scripts/evm-tools (scripts/test does)")
    return tool


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("chain")
    port = free_port()
    anvil = subprocess.Popen(
        [str(evm_tool("anvil")), "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rpc = f"http://127.0.0.1:{port}"
    try:
        web3 = Web3(Web3.HTTPProvider(rpc))
        deadline = time.monotonic() + 30
        while not web3.is_connected():
            assert time.monotonic() < deadline, "anvil did not start"
            time.sleep(0.1)
        chain = Chain(rpc, "", web3, folder)
        deployer = Account.create()
        (folder / "deployer.evm").write_text("0x" + bytes(deployer.key).hex())
        web3.provider.make_request("anvil_setBalance", [deployer.address, hex(100 * 10**18)])
        deployed = agentrail("chain", "deploy", "--rpc", rpc, "--evm-key", str(folder / "deployer.evm"),
                             "--data", str(folder / "data"))
        chain.token = str(deployed["token"])
        yield chain
    finally:
        anvil.terminate()
        anvil.wait(timeout=30)


def decode(header: str) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(header)))


@dataclass
class RustProvider:
    url: str
    pay_to: str
    process: subprocess.Popen[str]


def start_rust_provider(node: str, chain: Chain, folder: Path, pay_to: str, *settling: str) -> RustProvider:
    """The example provider offering exact beside channel; `settling` says
    how it settles (`--settle-key FILE` or `--facilitator URL`, and
    `--settle-before`)."""
    port = free_port()
    process = subprocess.Popen(
        [str(node_binary().parent / "provider"), "--node", node, "--key", str(folder / "provider.key"),
         "--store", str(folder / "store"), "--listen", f"127.0.0.1:{port}",
         "--exact-rpc", chain.rpc, "--exact-token", chain.token, "--exact-pay-to", pay_to, *settling],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line, line
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return RustProvider(f"http://127.0.0.1:{port}", pay_to, process)


def stop(provider: RustProvider) -> None:
    provider.process.terminate()
    provider.process.wait(timeout=30)


@pytest.fixture()
def rust_exact_provider(node: str, chain: Chain, tmp_path: Path) -> Iterator[RustProvider]:
    """The example provider settling from its own EVM key."""
    payee, _ = chain.account("payee")
    _, settle_key = chain.account("settler", eth=10)
    running = start_rust_provider(node, chain, tmp_path, payee.address, "--settle-key", str(settle_key))
    try:
        yield running
    finally:
        stop(running)


def sdk_client(chain: Chain, account: Any) -> x402Client:
    client = x402Client()
    register_exact_evm_client(client, account, networks=NETWORK)
    # The SDK pays only the assets it knows unless told: allow TestUSD.
    client.set_spend_controls(
        {"allowed_assets": [{"network": NETWORK, "asset": chain.token, "max_amount_per_payment": "100000"}]}
    )
    return client


def test_x402s_client_pays_the_rust_provider_by_exact(chain: Chain, rust_exact_provider: RustProvider) -> None:
    payer, _ = chain.account("payer", usd="1")
    before = chain.balance(payer.address)
    offered = httpx.post(rust_exact_provider.url + "/stats", content=b"unpaid")
    assert offered.status_code == 402
    required = decode(offered.headers["PAYMENT-REQUIRED"])
    conforms("PaymentRequired", required)
    schemes = [(a["scheme"], a["network"]) for a in required["accepts"]]
    assert schemes[1] == ("exact", NETWORK) and schemes[0][0] == "channel", schemes
    assert required["accepts"][1]["extra"] == {"name": "Test USD", "version": "2"}

    async def run() -> list[dict[str, Any]]:
        settlements = []
        async with x402HttpxClient(sdk_client(chain, payer), timeout=60) as http:
            for _ in range(3):
                answer = await http.post(rust_exact_provider.url + "/stats", content=b"paid on chain by x402")
                assert answer.status_code == 200, answer.text
                assert answer.json()["words"] == 5
                settlements.append(decode(answer.headers["PAYMENT-RESPONSE"]))
        return settlements

    settlements = asyncio.run(run())
    for settlement in settlements:
        conforms("SettlementResponse", settlement)
        assert settlement["success"] and settlement["network"] == NETWORK
        assert settlement["payer"] == payer.address
        receipt = chain.web3.eth.get_transaction_receipt(settlement["transaction"])
        assert receipt["status"] == 1 and receipt["to"] == Web3.to_checksum_address(chain.token)
    assert len({s["transaction"] for s in settlements}) == 3
    assert chain.balance(payer.address) == before - 3 * STATS_PRICE
    assert chain.balance(rust_exact_provider.pay_to) == 3 * STATS_PRICE


def test_a_retried_payment_is_settled_and_served_once(chain: Chain, rust_exact_provider: RustProvider) -> None:
    """The same PAYMENT-SIGNATURE sent twice: served once, then refused. With
    a payment identifier, the retry is the same request: served again under
    the first transaction, and a fresh authorization under the same id is
    not charged either."""
    payer, _ = chain.account("retrier", usd="1")
    client = sdk_client(chain, payer)
    url = rust_exact_provider.url + "/stats"

    def signed(payment_id: str | None = None) -> str:
        required = PaymentRequired.model_validate(decode(httpx.post(url).headers["PAYMENT-REQUIRED"]))
        payload = asyncio.run(client.create_payment_payload(required)).model_dump(by_alias=True, exclude_none=True)
        if payment_id is not None:
            # The SDK echoes the server's declaration; the id is the client's.
            payload["extensions"]["payment-identifier"]["info"]["id"] = payment_id
        return base64.b64encode(json.dumps(payload).encode()).decode()

    once = signed()
    first = httpx.post(url, content=b"one two", headers={"PAYMENT-SIGNATURE": once})
    assert first.status_code == 200, first.text
    again = httpx.post(url, content=b"one two", headers={"PAYMENT-SIGNATURE": once})
    assert again.status_code == 402
    refusal = decode(again.headers["PAYMENT-RESPONSE"])
    conforms("SettlementResponse", refusal)
    assert refusal["errorReason"] == "invalid_exact_evm_nonce_already_used"
    conforms("PaymentRequired", decode(again.headers["PAYMENT-REQUIRED"]))
    assert chain.balance(payer.address) == 10**6 - STATS_PRICE

    with_id = signed("pay_0123456789abcdef0123456789abcdef")
    answers = [httpx.post(url, content=b"one two", headers={"PAYMENT-SIGNATURE": with_id}) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    transactions = {decode(a.headers["PAYMENT-RESPONSE"])["transaction"] for a in answers}
    # A new authorization under the same id: the client's retry, not charged.
    fresh = signed("pay_0123456789abcdef0123456789abcdef")
    third = httpx.post(url, content=b"one two", headers={"PAYMENT-SIGNATURE": fresh})
    assert third.status_code == 200, third.text
    transactions.add(decode(third.headers["PAYMENT-RESPONSE"])["transaction"])
    assert len(transactions) == 1
    # A payment id recovers a lost answer; it is not a pass: after three
    # retries the next one pays again.
    assert httpx.post(url, content=b"one two", headers={"PAYMENT-SIGNATURE": with_id}).status_code == 200
    spent = httpx.post(url, content=b"one two", headers={"PAYMENT-SIGNATURE": with_id})
    assert spent.status_code == 402
    assert decode(spent.headers["PAYMENT-RESPONSE"])["errorReason"] == "payment_identifier_spent"
    assert chain.balance(payer.address) == 10**6 - 2 * STATS_PRICE
    assert chain.balance(rust_exact_provider.pay_to) == 2 * STATS_PRICE


def test_x402s_client_is_refused_with_x402s_codes(chain: Chain, rust_exact_provider: RustProvider) -> None:
    poor, _ = chain.account("poor")

    async def run() -> httpx.Response:
        async with x402HttpxClient(sdk_client(chain, poor), timeout=60) as http:
            return await http.post(rust_exact_provider.url + "/stats", content=b"no money")

    answer = asyncio.run(run())
    assert answer.status_code == 402
    refusal = decode(answer.headers["PAYMENT-RESPONSE"])
    assert refusal["errorReason"] == "invalid_exact_evm_insufficient_balance", refusal
    assert chain.balance(rust_exact_provider.pay_to) == 0


def start_facilitator(chain: Chain, *extra: str) -> tuple[str, subprocess.Popen[str]]:
    _, key = chain.account("facilitator", eth=10)
    port = free_port()
    process = subprocess.Popen(
        [str(node_binary()), "--json", "facilitator", "--chain-rpc", chain.rpc, "--evm-key", str(key),
         "--listen", f"127.0.0.1:{port}", "--token", chain.token, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    started = json.loads(process.stdout.readline())
    assert started["network"] == NETWORK
    return str(started["url"]), process


@pytest.fixture()
def facilitator(chain: Chain) -> Iterator[str]:
    url, process = start_facilitator(chain)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class SdkServer:
    url: str
    pay_to: str


@pytest.fixture()
def sdk_server(chain: Chain, facilitator: str) -> Iterator[SdkServer]:
    """x402's own FastAPI middleware selling GET /paid for 0.01 TestUSD,
    settling through `agentrail facilitator`."""
    payee, _ = chain.account("seller")
    server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=facilitator)))
    server.register(NETWORK, ExactEvmServerScheme())
    routes = {
        "GET /paid": {
            "accepts": {
                "scheme": "exact",
                "network": NETWORK,
                "payTo": payee.address,
                "price": {"amount": "10000", "asset": chain.token, "extra": {"name": "Test USD", "version": "2"}},
                "maxTimeoutSeconds": 60,
            },
            "description": "a paid answer",
            "mimeType": "application/json",
        }
    }
    app = FastAPI()
    app.add_middleware(PaymentMiddlewareASGI, routes=routes, server=server)

    @app.get("/paid")
    async def paid() -> dict[str, bool]:
        return {"paid": True}

    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "the x402 server did not start"
        time.sleep(0.05)
    try:
        yield SdkServer(f"http://127.0.0.1:{port}", payee.address)
    finally:
        running.should_exit = True
        thread.join(timeout=30)


def test_agentrail_pays_x402s_fastapi_server_through_agentrail_facilitator(
    node: str, chain: Chain, sdk_server: SdkServer, tmp_path: Path
) -> None:
    payer, evm_key = chain.account("agent", usd="1")
    ledger = Client(node)
    key = Key.generate()
    ledger.register_principal(key)
    key_file = tmp_path / "agent.key"
    key.save(key_file)
    offered = httpx.get(sdk_server.url + "/paid")
    assert offered.status_code == 402
    conforms("PaymentRequired", decode(offered.headers["PAYMENT-REQUIRED"]))
    for _ in range(2):
        answer = agentrail("--node", node, "pay-url", sdk_server.url + "/paid", "--key", str(key_file),
                           "--evm-key", str(evm_key), "--exact-asset", f"{NETWORK}:{chain.token}")
        assert answer["status"] == 200 and json.loads(answer["body"]) == {"paid": True}
        assert answer["paid"] == "10000"
        settlement = answer["settlement"]
        conforms("SettlementResponse", settlement)
        assert settlement["success"] and settlement["payer"] == payer.address
        assert chain.web3.eth.get_transaction_receipt(settlement["transaction"])["status"] == 1
    assert chain.balance(sdk_server.pay_to) == 2 * 10_000
    assert chain.balance(payer.address) == 10**6 - 2 * 10_000


def test_x402s_client_pays_x402s_server_through_agentrail_facilitator(chain: Chain, sdk_server: SdkServer) -> None:
    payer, _ = chain.account("buyer", usd="1")

    async def run() -> httpx.Response:
        async with x402HttpxClient(sdk_client(chain, payer), timeout=60) as http:
            return await http.get(sdk_server.url + "/paid")

    answer = asyncio.run(run())
    assert answer.status_code == 200, answer.text
    settlement = decode(answer.headers["PAYMENT-RESPONSE"])
    assert settlement["success"] and chain.web3.eth.get_transaction_receipt(settlement["transaction"])["status"] == 1
    assert chain.balance(sdk_server.pay_to) == 10_000


def test_the_facilitator_answers_x402s_shapes_and_settles_once(chain: Chain, facilitator: str) -> None:
    supported = httpx.get(facilitator + "/supported").json()
    assert {"x402Version": 2, "scheme": "exact", "network": NETWORK} in supported["kinds"]
    bad = httpx.post(facilitator + "/verify", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    payer, _ = chain.account("direct", usd="1")
    payee, _ = chain.account("direct-payee")
    requirements = {
        "scheme": "exact", "network": NETWORK, "asset": chain.token, "payTo": payee.address,
        "amount": "2500", "maxTimeoutSeconds": 60, "extra": {"name": "Test USD", "version": "2"},
    }
    required = PaymentRequired.model_validate(
        {"x402Version": 2, "resource": {"url": "https://example.test/x"}, "accepts": [requirements]}
    )
    payload = asyncio.run(sdk_client(chain, payer).create_payment_payload(required))
    body = {"x402Version": 2, "paymentPayload": payload.model_dump(by_alias=True, exclude_none=True),
            "paymentRequirements": requirements}
    verified = httpx.post(facilitator + "/verify", json=body).json()
    assert verified == {"isValid": True, "payer": payer.address}
    first = httpx.post(facilitator + "/settle", json=body, timeout=60).json()
    second = httpx.post(facilitator + "/settle", json=body, timeout=60).json()
    assert first["success"] and second["success"] and first["transaction"] == second["transaction"]
    assert chain.balance(payee.address) == 2500
    again = httpx.post(facilitator + "/verify", json=body).json()
    assert again["isValid"] is False and again["invalidReason"] == "invalid_exact_evm_nonce_already_used"
    # A facilitator told whom it settles for pays no one else's gas.
    closed, process = start_facilitator(chain, "--pay-to", payer.address)
    try:
        fresh = asyncio.run(sdk_client(chain, payer).create_payment_payload(required))
        body["paymentPayload"] = fresh.model_dump(by_alias=True, exclude_none=True)
        refused = httpx.post(closed + "/settle", json=body, timeout=60).json()
        assert refused["success"] is False and refused["errorReason"] == "recipient_not_served"
        assert refused["transaction"] == ""
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert chain.balance(payee.address) == 2500


@pytest.fixture()
def python_exact_provider(node: str, chain: Chain, facilitator: str, tmp_path: Path) -> Iterator[RustProvider]:
    """The Python example provider (agentrail's ASGI paywall) offering exact
    beside channel, settling through `agentrail facilitator`."""
    payee, _ = chain.account("py-payee")
    running = Provider(
        node, tmp_path, free_port(), "--exact-network", NETWORK, "--exact-asset", chain.token,
        "--exact-name", "Test USD", "--exact-version", "2", "--exact-pay-to", payee.address,
        "--facilitator", facilitator,
    )
    try:
        yield RustProvider(running.url, payee.address, running.process)  # type: ignore[arg-type]
    finally:
        running.stop()


def test_x402s_client_pays_the_python_paywall_by_exact_once_per_payment(
    chain: Chain, python_exact_provider: RustProvider
) -> None:
    payer, _ = chain.account("py-payer", usd="1")
    url = python_exact_provider.url + "/stats"
    offered = httpx.post(url)
    required = decode(offered.headers["PAYMENT-REQUIRED"])
    conforms("PaymentRequired", required)
    assert [a["scheme"] for a in required["accepts"]] == ["channel", "exact"]
    client = sdk_client(chain, payer)

    async def run() -> dict[str, Any]:
        async with x402HttpxClient(client, timeout=60) as http:
            answer = await http.post(url, content=b"paid by x402 in python")
            assert answer.status_code == 200, answer.text
            assert answer.json()["words"] == 5
            return decode(answer.headers["PAYMENT-RESPONSE"])

    settlement = asyncio.run(run())
    conforms("SettlementResponse", settlement)
    assert settlement["success"] and chain.web3.eth.get_transaction_receipt(settlement["transaction"])["status"] == 1
    payload = asyncio.run(
        client.create_payment_payload(PaymentRequired.model_validate(required))
    ).model_dump(by_alias=True, exclude_none=True)
    header = base64.b64encode(json.dumps(payload).encode()).decode()
    first = httpx.post(url, content=b"a b", headers={"PAYMENT-SIGNATURE": header})
    again = httpx.post(url, content=b"a b", headers={"PAYMENT-SIGNATURE": header})
    assert first.status_code == 200, first.text
    assert again.status_code == 402
    assert decode(again.headers["PAYMENT-RESPONSE"])["errorReason"] == "invalid_exact_evm_nonce_already_used"
    tampered = json.loads(json.dumps(payload))
    tampered["payload"]["authorization"]["value"] = "999999"
    tampered["accepted"]["amount"] = "999999"
    wrong = httpx.post(url, headers={"PAYMENT-SIGNATURE": base64.b64encode(json.dumps(tampered).encode()).decode()})
    assert wrong.status_code == 402
    assert decode(wrong.headers["PAYMENT-RESPONSE"])["errorReason"] == "invalid_payment_requirements"
    # Under a payment id, the retry is the same request: served, not charged.
    with_id = asyncio.run(
        client.create_payment_payload(PaymentRequired.model_validate(required))
    ).model_dump(by_alias=True, exclude_none=True)
    with_id["extensions"]["payment-identifier"]["info"]["id"] = "pay_python_paywall_retry_0001"
    header = base64.b64encode(json.dumps(with_id).encode()).decode()
    answers = [httpx.post(url, content=b"a b", headers={"PAYMENT-SIGNATURE": header}) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    assert len({decode(a.headers["PAYMENT-RESPONSE"])["transaction"] for a in answers}) == 1
    assert chain.balance(python_exact_provider.pay_to) == 3 * STATS_PRICE
    assert chain.balance(payer.address) == 10**6 - 3 * STATS_PRICE


def agent_with_mandate(node: str, max_per_payment: str, daily_budget: str) -> tuple[Client, Key]:
    client = Client(node)
    owner, agent = Key.generate(), Key.generate()
    client.register_principal(owner)
    client.register_agent(
        owner, agent.did, Limits(max_per_payment=Decimal(max_per_payment), daily_budget=Decimal(daily_budget))
    )
    return client, agent


def test_the_mandate_binds_exact_payments_from_python(node: str, chain: Chain, sdk_server: SdkServer) -> None:
    """agentrail's x402 client (channel first, exact within the mandate)
    against x402's server, which sells GET /paid for 0.01: each payment is
    charged to the agent's grant on the ledger before it is signed."""
    payer, _ = chain.account("mandated", usd="1")
    url = sdk_server.url + "/paid"

    async def pay(x402: Any) -> httpx.Response:
        async with x402HttpxClient(x402, timeout=60) as http:
            return await http.get(url)

    client, agent = agent_with_mandate(node, "0.005", "1")
    small = ExactMandate(client, agent)
    assert (small.per_payment, small.mandated) == (5_000, True)
    # The per-payment limit is x402's spend control on the token: the
    # requirement is filtered out before anything is signed.
    with pytest.raises(X402PaymentError, match="rejected by spend_controls"):
        asyncio.run(pay(paying_client(small, payer, assets=[(NETWORK, chain.token)])))
    # Without that control, the ledger refuses the charge.
    bare = x402Client()
    register_exact_evm_client(bare, payer, networks=NETWORK)
    bare.set_spend_controls({"allowed_assets": [{"network": NETWORK, "asset": chain.token}]})
    small.install(bare)
    with pytest.raises(X402PaymentError, match="per_payment_limit_exceeded"):
        asyncio.run(pay(bare))
    client, agent = agent_with_mandate(node, "0.01", "0.025")
    mandate = ExactMandate(client, agent)
    x402 = paying_client(mandate, payer, assets=[(NETWORK, chain.token)])
    for _ in range(2):
        assert asyncio.run(pay(x402)).status_code == 200
    assert mandate.charged() == 20_000
    status = client.grant_status(agent.did)
    assert int(status.spent_today.root) == 20_000
    # A third payment would pass the day's budget of 0.025.
    with pytest.raises(X402PaymentError, match="budget_exceeded"):
        asyncio.run(pay(x402))
    assert chain.balance(sdk_server.pay_to) == 20_000


def test_pay_url_charges_the_agents_mandate_before_it_signs(
    node: str, chain: Chain, sdk_server: SdkServer, tmp_path: Path
) -> None:
    payer, evm_key = chain.account("cli-agent", usd="1")
    client, agent = agent_with_mandate(node, "0.01", "0.015")
    agent.save(tmp_path / "agent.key")
    pay = ("--node", node, "pay-url", sdk_server.url + "/paid", "--key", str(tmp_path / "agent.key"),
           "--evm-key", str(evm_key), "--exact-asset", f"{NETWORK}:{chain.token}")
    assert agentrail(*pay)["status"] == 200
    assert int(client.grant_status(agent.did).spent_today.root) == 10_000
    # The second would pass the day's budget: refused by the ledger, unsigned.
    refused = subprocess.run([str(node_binary()), "--json", *pay], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "budget_exceeded" in refused.stderr, refused.stderr
    assert chain.balance(sdk_server.pay_to) == 10_000
    assert chain.balance(payer.address) == 10**6 - 10_000
    # A token the payer was not told to pay in is never paid.
    other = subprocess.run(
        [str(node_binary()), "--node", node, "pay-url", sdk_server.url + "/paid", "--key", str(tmp_path / "agent.key"),
         "--evm-key", str(evm_key), "--exact-asset", f"{NETWORK}:0x{'11' * 20}"],
        capture_output=True, text=True, timeout=120,
    )
    assert other.returncode != 0 and "no channel payment" in other.stderr, other.stderr


def test_agentrails_x402_client_takes_the_channel_first(
    node: str, chain: Chain, python_exact_provider: RustProvider, tmp_path: Path
) -> None:
    payer, _ = chain.account("both", usd="1")
    client = Client(node)
    key = Key.generate()
    client.register_principal(key)
    client.faucet(key.did, "1")
    channels = ChannelPayer(client, key, tmp_path / "payer.sqlite", max_per_call="0.01", max_total="1")
    x402 = paying_client(ExactMandate(client, key), payer, assets=[(NETWORK, chain.token)], channels=channels)

    async def run() -> httpx.Response:
        async with x402HttpxClient(x402, timeout=60) as http:
            return await http.post(python_exact_provider.url + "/stats", content=b"by channel")

    answer = asyncio.run(run())
    assert answer.status_code == 200, answer.text
    assert decode(answer.headers["PAYMENT-RESPONSE"])["network"].startswith("agentrail:")
    assert channels.spent() == STATS_PRICE
    assert chain.balance(python_exact_provider.pay_to) == 0


def test_the_rust_provider_settles_through_a_facilitator_before_serving_and_across_a_restart(
    node: str, chain: Chain, facilitator: str, tmp_path: Path
) -> None:
    payee, _ = chain.account("restarted-payee")
    payer, _ = chain.account("restarted-payer", usd="1")
    settling = ("--facilitator", facilitator, "--settle-before")
    running = start_rust_provider(node, chain, tmp_path, payee.address, *settling)
    url = running.url + "/stats"
    client = sdk_client(chain, payer)
    required = PaymentRequired.model_validate(decode(httpx.post(url).headers["PAYMENT-REQUIRED"]))
    payload = asyncio.run(client.create_payment_payload(required)).model_dump(by_alias=True, exclude_none=True)
    header = {"PAYMENT-SIGNATURE": base64.b64encode(json.dumps(payload).encode()).decode()}
    try:
        first = httpx.post(url, content=b"x y z", headers=header, timeout=60)
        assert first.status_code == 200, first.text
        tx = decode(first.headers["PAYMENT-RESPONSE"])["transaction"]
        assert chain.web3.eth.get_transaction_receipt(tx)["status"] == 1
    finally:
        stop(running)
    # The same payment to the restarted provider: its record survived.
    running = start_rust_provider(node, chain, tmp_path, payee.address, *settling)
    try:
        again = httpx.post(running.url + "/stats", content=b"x y z", headers=header, timeout=60)
        assert again.status_code == 402, again.text
        assert decode(again.headers["PAYMENT-RESPONSE"])["errorReason"] == "invalid_exact_evm_nonce_already_used"
    finally:
        stop(running)
    assert chain.balance(payee.address) == STATS_PRICE


TRANSFER_WITH_AUTHORIZATION = [
    {
        "name": "transferWithAuthorization",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"},
            {"name": "v", "type": "uint8"}, {"name": "r", "type": "bytes32"}, {"name": "s", "type": "bytes32"},
        ],
        "outputs": [],
    }
]


def test_a_nonce_spent_on_another_authorization_pays_nothing(
    chain: Chain, rust_exact_provider: RustProvider, facilitator: str
) -> None:
    """The attacker spends the nonce first on a zero transfer to itself, then
    offers the paywall and the facilitator a payment under the same nonce:
    the used nonce is not taken for a payment, nothing is served."""
    attacker, _ = chain.account("attacker", eth=1)
    url = rust_exact_provider.url + "/stats"
    required = PaymentRequired.model_validate(decode(httpx.post(url).headers["PAYMENT-REQUIRED"]))
    payload = asyncio.run(sdk_client(chain, attacker).create_payment_payload(required)).model_dump(
        by_alias=True, exclude_none=True
    )
    auth = payload["payload"]["authorization"]
    decoy = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": "Test USD", "version": "2", "chainId": 31337, "verifyingContract": chain.token},
        "message": {"from": attacker.address, "to": attacker.address, "value": 0, "validAfter": 0,
                    "validBefore": int(auth["validBefore"]), "nonce": auth["nonce"]},
    }
    signed = Account.sign_message(encode_typed_data(full_message=decoy), attacker.key)
    chain.web3.provider.make_request("anvil_impersonateAccount", [attacker.address])
    token = chain.web3.eth.contract(address=Web3.to_checksum_address(chain.token), abi=TRANSFER_WITH_AUTHORIZATION)
    tx = token.functions.transferWithAuthorization(
        attacker.address, attacker.address, 0, 0, int(auth["validBefore"]), bytes.fromhex(auth["nonce"][2:]),
        signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"),
    ).transact({"from": attacker.address})
    assert chain.web3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    header = {"PAYMENT-SIGNATURE": base64.b64encode(json.dumps(payload).encode()).decode()}
    answer = httpx.post(url, content=b"free?", headers=header, timeout=60)
    assert answer.status_code == 402, answer.text
    assert decode(answer.headers["PAYMENT-RESPONSE"])["errorReason"] == "invalid_exact_evm_nonce_already_used"
    requirements = required.accepts[1].model_dump(by_alias=True, exclude_none=True)
    body = {"x402Version": 2, "paymentPayload": payload, "paymentRequirements": requirements}
    settled = httpx.post(facilitator + "/settle", json=body, timeout=60).json()
    assert settled["success"] is False and settled["errorReason"] == "invalid_exact_evm_nonce_already_used"
    assert chain.balance(rust_exact_provider.pay_to) == 0
