"""``vigil serve``: run the HTTP API."""

from __future__ import annotations

import typer

from vigil.config import get_settings


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Serve the REST API (OpenAPI docs at /docs). Clients need a token (`vigil user token`)
    or a console session."""
    # Imported here: the web stack costs every other command a second of start-up.
    import uvicorn

    from vigil.api.app import create_app

    settings = get_settings()
    # Access logs off: uvicorn would log query strings, and /h/hash?url= may carry private URLs.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        log_level=settings.log_level.lower(),
    )
