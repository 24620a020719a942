"""Generates `src/agentrail/api.py`, the typed methods of the clients.

    python tools/generate_api.py openapi.json src/agentrail/api.py

One method per command (from the command models of `models.py`, which
`generate_models.py` wrote from the same document) and one per read (from
the document's `GET` paths). Commands are shared by `Client` and
`AsyncClient` (the method returns what the client's `_command` returns: a
response, or a coroutine of one); reads are written once for each, since a
sync and an async read differ in more than their return. `tests/test_models.py`
regenerates the file from the node under test and requires it unchanged.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pydantic

# Commands written by hand in client.py (their grants are built from limits,
# or their arguments are positional in the README's quick start).
HAND_WRITTEN = {"register_principal", "register_agent", "issue_session", "transfer"}
# Signed by the node itself, never by a client.
NODE_ONLY = {"tick"}
# Ids a command creates: generated when not given, so that retrying the same
# call object is safe and a first call needs none.
NEW_IDS = {
    "hold": "hold_id",
    "publish_listing": "listing_id",
    "request_quotes": "rfq_id",
    "submit_quote": "quote_id",
    "accept_quote": "task_id",
    "license_dataset": "license_id",
}
# Read methods, by path.
READS = {
    "/v1/accounts/{did}/balance": "balance",
    "/v1/accounts/{did}/history": "history",
    "/v1/agents/{did}/card": "agent_card",
    "/v1/approvals/{index}": "approval",
    "/v1/channels/{id}": "channel",
    "/v1/grants/{did}": "grant_status",
    "/v1/health": "health",
    "/v1/holds/{id}": "hold_status",
    "/v1/licenses/{id}": "license",
    "/v1/listings": "listings",
    "/v1/listings/{id}": "listing",
    "/v1/log/entries/{index}": "log_entry",
    "/v1/log/proof/consistency": "consistency",
    "/v1/passports/{did}": "passport",
    "/v1/receipts/{index}": "receipt",
    "/v1/reputation/{did}": "reputation",
    "/v1/rfqs": "rfqs",
    "/v1/rfqs/{id}": "rfq",
    "/v1/tasks/{id}": "task",
    "/v1/subscriptions/{id}": "subscription",
    "/v1/bounties/{id}": "bounty",
    "/v1/orders/{id}": "order",
    "/v1/principals/{did}/agents": "agents_of",
    "/v1/principals/{did}/approvals": "pending_approvals",
}
PYTHON_NAMES = {"from": "from_", "id": "id_"}
KINDS = {"integer": "int", "string": "str", "number": "float", "boolean": "bool"}

HEADER = '''"""The clients' typed methods, generated from the node's OpenAPI document by
`tools/generate_api.py`. Do not edit.

Amounts are USD (`Decimal` or a decimal string), converted exactly to
atomic units; an `int` or a `float` is refused rather than guessed at.
Every command that moves money carries an idempotency key, generated when
not given.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from . import models
from .keys import Key
from .units import to_atomic

R = TypeVar("R")
USD = Decimal | str


def usd(value: USD) -> str:
    """USD to the wire's atomic units."""
    if not isinstance(value, (Decimal, str)):
        raise TypeError(f"an amount is USD as a Decimal or a decimal string, not {type(value).__name__}")
    return str(to_atomic(value))


def new_id() -> str:
    from .signing import random_nonce

    return "py-" + random_nonce()


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
'''


def render(annotation: Any) -> tuple[str, str]:
    """The annotation of a parameter, and how its value is converted
    (`{}` stands for the value)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "None", "{}"
    if origin in (typing.Union, types.UnionType):
        parts = [render(a) for a in args if a is not type(None)]
        if len(parts) == 1 and len(args) == 2:
            return f"{parts[0][0]} | None", parts[0][1]
        return " | ".join(p[0] for p in parts), "{}"
    if origin is list:
        inner, convert = render(args[0])
        if convert == "{}":
            return f"list[{inner}]", "{}"
        return f"list[{inner}]", f"[{convert.format('item')} for item in {{}}]"
    if origin is dict:
        key, _ = render(args[0])
        inner, convert = render(args[1])
        if convert == "{}":
            return f"dict[{key}, {inner}]", "{}"
        return f"dict[{key}, {inner}]", f"{{{{k: {convert.format('v')} for k, v in {{}}.items()}}}}"
    if annotation is typing.Any:
        return "Any", "{}"
    if isinstance(annotation, type):
        if annotation.__name__ == "Amount":
            return "USD", "usd({})"
        if issubclass(annotation, pydantic.RootModel):
            root = annotation.model_fields["root"].annotation
            inner, convert = render(root)
            if inner.startswith("models."):
                return f"models.{annotation.__name__} | {inner}", "{}"
            return inner, convert
        if issubclass(annotation, pydantic.BaseModel):
            return f"models.{annotation.__name__} | dict[str, Any]", "{}"
        if issubclass(annotation, enum.Enum):
            return f"models.{annotation.__name__} | str", "{}"
        if annotation in (str, int, bool):
            return annotation.__name__, "{}"
    raise ValueError(f"no rendering for {annotation!r}")


def docstring(text: str | None, indent: str) -> str:
    lines = (text or "").strip().splitlines() or [""]
    body = "\n".join((indent + line.strip()) if line.strip() else "" for line in lines)
    return (
        f'{indent}"""{body.strip()}\n{indent}"""\n'
        if len(lines) > 1
        else f'{indent}"""{lines[0].strip()}"""\n'
    )


def command_methods(models: types.ModuleType) -> str:
    out = []
    commands = sorted(
        (
            cls
            for name, cls in vars(models).items()
            if isinstance(cls, type)
            and name.endswith("Command")
            and name != "Command"
            and issubclass(cls, pydantic.BaseModel)
        ),
        key=lambda cls: cls.__name__,
    )
    for cls in commands:
        tag = typing.get_args(cls.model_fields["type"].annotation)[0]
        if tag in HAND_WRITTEN or tag in NODE_ONLY:
            continue
        required, optional, body = [], [], []
        for name, info in cls.model_fields.items():
            if name == "type":
                continue
            annotation, convert = render(info.annotation)
            wire = info.alias or name
            value = convert.format(name)
            generated = name == "idempotency_key" or NEW_IDS.get(tag) == name
            if name == "from_":
                optional.append(f"from_: {annotation.removesuffix(' | None')} | None = None")
                body.append(f'"{wire}": from_ or signer.did')
            elif generated:
                optional.append(f"{name}: str | None = None")
                body.append(f'"{wire}": {name} or new_id()')
            elif info.is_required():
                required.append(f"{name}: {annotation}")
                body.append(f'"{wire}": {value}')
            else:
                if not annotation.endswith("| None"):
                    annotation += " | None"
                optional.append(f"{name}: {annotation} = None")
                guarded = value if value == name else f"None if {name} is None else {value}"
                body.append(f'"{wire}": {guarded}')
        params = ", ".join(["self", "signer: Key", "*", *required, *optional])
        out.append(f"    def {tag}({params}) -> R:\n")
        out.append(docstring(cls.__doc__, "        "))
        fields = ", ".join([f'"type": "{tag}"', *body])
        out.append(
            f"        return self._command(\n            signer,\n"
            f"            models.{cls.__name__}.model_validate(_present({{{fields}}})),\n        )\n\n"
        )
    return "".join(out)


def read_methods(document: dict[str, Any], asynchronous: bool) -> str:
    out = []
    for path, name in READS.items():
        operation = document["paths"][path]["get"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        model = schema["$ref"].rsplit("/", 1)[1]
        params, optional, query = [], [], []
        url = path
        for parameter in operation.get("parameters", []):
            python = PYTHON_NAMES.get(parameter["name"], parameter["name"])
            kind = KINDS.get(parameter.get("schema", {}).get("type", "string"), "str")
            if parameter["in"] == "path":
                params.append(f"{python}: {kind}")
                url = url.replace("{" + parameter["name"] + "}", "{" + python + "}")
                continue
            if parameter.get("required"):
                params.append(f"{python}: {kind}")
            else:
                optional.append(f"{python}: {kind} | None = None")
            query.append(f'"{parameter["name"]}": {python}')
        signature = ", ".join(["self", *params, *(["*", *optional] if optional else [])])
        prefix = "async def" if asynchronous else "def"
        call = "await self._get" if asynchronous else "self._get"
        query_text = f"_present({{{', '.join(query)}}})" if query else "None"
        out.append(f"    {prefix} {name}({signature}) -> models.{model}:\n")
        out.append(docstring(operation.get("summary") or operation.get("description"), "        "))
        out.append(f'        return {call}(f"{url}", models.{model}, {query_text})\n\n')
    return "".join(out)


def generate(openapi: Path, models_file: Path, output: Path) -> None:
    document = json.loads(openapi.read_text())
    spec = importlib.util.spec_from_file_location("agentrail._generated_models", models_file)
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = models
    spec.loader.exec_module(models)
    text = (
        HEADER
        + "\n\nclass Commands(Generic[R]):\n"
        + '    """One method per command; each signs and sends it with `_command`."""\n\n'
        + "    def _command(self, signer: Key, command: BaseModel) -> R:\n"
        + "        raise NotImplementedError\n\n"
        + command_methods(models)
        + "\nclass Reads:\n"
        + '    """One method per read of the node\'s API."""\n\n'
        + "    def _get(self, path: str, model: Any, params: dict[str, Any] | None) -> Any:\n"
        + "        raise NotImplementedError\n\n"
        + read_methods(document, asynchronous=False)
        + "\nclass AsyncReads:\n"
        + '    """The reads of `Reads`, awaited."""\n\n'
        + "    async def _get(self, path: str, model: Any, params: dict[str, Any] | None) -> Any:\n"
        + "        raise NotImplementedError\n\n"
        + read_methods(document, asynchronous=True)
    )
    output.write_text(text)
    subprocess.run([sys.executable, "-m", "black", "-q", str(output)], check=True)


if __name__ == "__main__":
    generate(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
