"""The generated models are the node's OpenAPI document, unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from agentrail import models

PACKAGE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PACKAGE / "tools"))
import generate_api  # noqa: E402
import generate_models  # noqa: E402


def test_models_match_the_node_openapi_document(node: str, tmp_path: Path) -> None:
    document = httpx.get(node + "/v1/openapi.json").json()
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    generate_models.generate(tmp_path / "openapi.json", tmp_path / "models.py")
    committed = (PACKAGE / "src" / "agentrail" / "models.py").read_text()
    assert (tmp_path / "models.py").read_text() == committed, (
        "src/agentrail/models.py is stale: run " "tools/generate_models.py on the node's /v1/openapi.json"
    )
    generate_api.generate(tmp_path / "openapi.json", tmp_path / "models.py", tmp_path / "api.py")
    committed = (PACKAGE / "src" / "agentrail" / "api.py").read_text()
    assert (
        tmp_path / "api.py"
    ).read_text() == committed, (
        "src/agentrail/api.py is stale: run tools/generate_api.py on the node's /v1/openapi.json"
    )


def test_every_error_code_of_the_document_is_a_model_value(node: str) -> None:
    document = httpx.get(node + "/v1/openapi.json").json()
    codes = set(document["x-error-codes"])
    assert codes == {code.value for code in models.ErrorCode}
