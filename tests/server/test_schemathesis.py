"""No input, however malformed, makes the server answer 500 (schemathesis over its OpenAPI schema).

The app runs in-process in front of a dead engine: what passes validation ends at 503 in
milliseconds, so many examples per route stay cheap, and nothing leaves the process.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from .conftest import make_dead_app

schema = schemathesis.openapi.from_asgi("/openapi.json", make_dead_app(api_keys=()))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case):
    response = case.call()
    assert response.status_code != 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and error["type"]
    if response.status_code >= 500:
        assert response.status_code == 503  # the engine is down: the one server error we may give
