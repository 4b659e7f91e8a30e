"""The web page at `/`: plain HTML and JavaScript in `service/static`, plotly.js from the plotly package.

No build step and nothing fetched from the internet: the page's script talks to the same app's `/api`,
and `/static/vendor/plotly.min.js` is the copy of plotly.js that ships inside the plotly Python package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "mount_web", "plotly_js"]

STATIC = Path(__file__).resolve().parent / "static"


def plotly_js() -> Path:
    """The plotly.min.js bundled with the installed plotly package."""
    import plotly

    from service.app import ApiError

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ApiError("plotly.min.js is missing from the installed plotly package", 404)
    return path


def mount_web(app: FastAPI) -> None:
    """Add the page, its static files and the vendored plotly.js to `app`."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> FileResponse:
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
