"""API fuzzing: schemathesis generates requests from the service's own OpenAPI schema (valid and invalid
bodies, parameters and uploads) against a real server; no answer may be a 5xx or carry a traceback.
Bounded: `MAX_EXAMPLES` per operation, writes sent with the token so they reach the code behind it."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from service.live import LiveServer

TOKEN = "fuzz-token-0123456789"
MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("fuzz"), token=TOKEN) as s:
        yield s


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, server) -> None:
    response = case.call(headers=server.headers, timeout=60)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        detail = json.loads(response.content).get("detail")  # every error is JSON with one line
        assert isinstance(detail, str) and len(detail.splitlines()) == 1, response.text[:500]
