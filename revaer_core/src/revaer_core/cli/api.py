"""``revaer api``: the HTTP API alone, serving what the store holds while the daemon is down (or elsewhere)."""

from __future__ import annotations

import click

from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.errors import PluginError
from revaer_core.preflight import check_exposure


@click.command("api")
@click.option(
    "--host",
    metavar="ADDRESS",
    help="Address to listen on. Default: [api] host, 127.0.0.1. Off loopback a token is required.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one). Default: [api] port, 7080.",
)
@pass_cli
def api_command(ctx: CliContext, host: str | None, port: int | None) -> None:
    """Serve the HTTP API against the runtime store until interrupted.

    Torrents, FsOps jobs, health and metrics come from the store; live events
    are only served by the API inside `revaer run`. The write endpoint (job
    retry) needs `Authorization: Bearer <token>` ([api] token or
    REVAER_API_TOKEN). Off loopback a token is required, and every endpoint
    but the liveness answer of /health asks for it; [api] read_token gives
    read-only access, and [api] metrics_public = true opens /metrics alone.
    """
    try:
        from revaer_core.api.app import create_app
        from revaer_core.api.server import ApiServer
    except ImportError as exc:
        raise PluginError(
            f"the HTTP API needs its extra: pip install 'revaer-core[api]' ({exc.name} is missing)"
        ) from exc
    settings = ctx.settings.api
    bind = host or settings.host
    check_exposure(bind, settings.token)  # a settings error comes before the store opens
    app = create_app(
        ctx.store,
        token=settings.token,
        read_token=settings.read_token,
        metrics_public=settings.metrics_public,
        bind_host=bind,
    )
    server = ApiServer(app, host=bind, port=settings.port if port is None else port)
    store = f"the {ctx.store.backend} store" if ctx.store.backend else "no store (persistence is off)"
    click.echo(f"revaer: API over {store} on {server.url} (Ctrl-C stops)", err=True)
    server.serve_forever()
