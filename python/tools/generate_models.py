"""Generates `src/agentrail/models.py` from the node's OpenAPI document.

    python tools/generate_models.py openapi.json src/agentrail/models.py

The document comes from `GET /v1/openapi.json` of the node binary. The
pydantic models are written by `datamodel-code-generator`; this script only
names the schemas that OpenAPI leaves anonymous (each variant of a tagged
union is named after its tag: `TransferCommand`, `TransferredEvent`) and
folds unions of string constants into one enum, so the generated names are
the words of the protocol. `tests/test_models.py` regenerates the file from
the node under test and requires it to be unchanged.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TAGS = ("type", "state", "kind", "model")


def camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.split("_"))


def name_variants(name: str, schema: dict[str, Any]) -> None:
    variants = schema.get("oneOf")
    if not isinstance(variants, list):
        return
    if all(v.get("type") == "string" for v in variants):
        values: list[str] = []
        notes: list[str] = []
        for variant in variants:
            if "const" in variant:
                values.append(variant["const"])
            else:
                values.extend(variant.get("enum", []))
            if variant.get("description"):
                notes.append(f"`{variant.get('const', '')}`: {variant['description']}")
        schema.pop("oneOf")
        schema["type"] = "string"
        schema["enum"] = values
        return
    tag = None
    for candidate in TAGS:
        if all(candidate in v.get("properties", {}) for v in variants):
            tag = candidate
            break
    if tag is None:
        return
    mapping = {}
    for variant in variants:
        const = variant["properties"][tag].get("const")
        if const is None:
            return
        suffix = "Status" if name.endswith("Status") else name
        title = camel(const) + ("" if camel(const).endswith(suffix) else suffix)
        if name == "Pricing":
            title = camel(const) + "Pricing"
        if name == "ExposureBound":
            title = camel(const) + "Bound"
        variant["title"] = title
        variant["properties"][tag]["default"] = const
        mapping[const] = f"#/components/schemas/{title}"
    schema["discriminator"] = {"propertyName": tag, "mapping": mapping}


def prepare(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        name_variants(name, schema)
    code = schemas["ErrorDetail"]["properties"]["code"]
    code["title"] = "ErrorCode"
    return document


def generate(openapi: Path, output: Path) -> None:
    document = prepare(json.loads(openapi.read_text()))
    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "openapi.json"
        prepared.write_text(json.dumps(document))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "datamodel_code_generator",
                "--input",
                str(prepared),
                "--input-file-type",
                "openapi",
                "--output",
                str(output),
                "--output-model-type",
                "pydantic_v2.BaseModel",
                "--target-python-version",
                "3.10",
                "--use-standard-collections",
                "--use-union-operator",
                "--use-title-as-name",
                "--allow-population-by-field-name",
                "--field-constraints",
                "--disable-timestamp",
                "--use-schema-description",
                "--use-field-description",
                "--enum-field-as-literal",
                "one",
                "--formatters",
                "black",
                "isort",
                "--custom-file-header",
                '"""The node\'s wire types, generated from its OpenAPI document by\n'
                "`tools/generate_models.py` (datamodel-code-generator). Do not edit.\n"
                '"""',
            ],
            check=True,
        )


if __name__ == "__main__":
    generate(Path(sys.argv[1]), Path(sys.argv[2]))
