"""The app serves an OpenAPI spec that documents every route and the error body."""

from __future__ import annotations

from fastapi.routing import APIRoute


async def test_openapi_spec_lists_every_http_route(client, app):
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "Warbler"
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    routes = {
        (m, r.path)
        for r in app.routes
        if isinstance(r, APIRoute) and r.include_in_schema
        for m in r.methods - {"HEAD"}
    }
    assert routes <= documented
    assert "/api/v1/conversations/{conversation_id}/messages" in spec["paths"]
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
