"""The served OpenAPI document lists every registered /api/v1 route."""

from __future__ import annotations

from starlette.routing import Route

from collab.api.routes import api_routes
from tests.api.conftest import Api


def test_openapi_lists_every_route(api: Api) -> None:
    r = api.anonymous().get("/openapi.json")
    assert r.status_code == 200
    document = r.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    registered = [
        (route.path, method)
        for route in api_routes()
        if isinstance(route, Route) and route.include_in_schema
        for method in (route.methods or set()) - {"HEAD"}
    ]
    assert len(registered) >= 22
    for path, method in registered:
        assert method.lower() in paths.get("/api/v1" + path, {}), (method, path)
        operation = paths["/api/v1" + path][method.lower()]
        assert operation["summary"] and "4XX" in operation["responses"]
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    assert documented == {("/api/v1" + p, m.lower()) for p, m in registered}
    assert "Error" in document["components"]["schemas"]
