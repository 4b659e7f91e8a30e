"""service: `scalefit serve`, the prediction service (FastAPI on uvicorn) with a fit registry and a web page.

    from service import ServiceConfig, create_app
    app = create_app(ServiceConfig(store="scalefit-store", token="s3cret"))   # an ASGI app for uvicorn

Modules: `app` (routes, errors, limits, auth), `models` (pydantic request/response models), `registry`
(SQLAlchemy: fits, runs tables, jobs), `jobs` (background fits run exactly once), `adapter` (the only
module that calls `fits`), `plot` (the page's plotly figure), `web` (the page and its assets).
docs/service.md describes the endpoints.
"""

from service.app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app"]
