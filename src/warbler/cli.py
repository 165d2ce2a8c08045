"""The ``warbler`` command: serve, migrate, demo, admin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from warbler.cli_kb import kb as kb_app
from warbler.cli_keys import keys as keys_app
from warbler.cli_privacy import privacy as privacy_app
from warbler.config import Settings, load_settings
from warbler.errors import WarblerError
from warbler.services import Services, build_services
from warbler.store.migrate import upgrade

app = typer.Typer(help="Warbler: self-hosted intelligent chat server.", no_args_is_help=True)
admin = typer.Typer(help="Create tenants, users and API keys.", no_args_is_help=True)
app.add_typer(admin, name="admin")
app.add_typer(kb_app, name="kb")
app.add_typer(keys_app, name="keys")
app.add_typer(privacy_app, name="privacy")
console = Console()

T = TypeVar("T")
ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML settings file.")]

DEMO_PASSWORD = "warbler-demo"


def _run(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    async def main() -> T:
        services = build_services(settings)
        try:
            await upgrade(services.db)
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except WarblerError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {exc.message} {exc.details or ''}")
        raise typer.Exit(1) from exc


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Default: WARBLER_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: WARBLER_PORT.")] = None,
    tls_cert: Annotated[
        str | None,
        typer.Option(
            "--tls-cert", help="PEM certificate: serve HTTPS/WSS (WARBLER_TLS_CERT_FILE)."
        ),
    ] = None,
    tls_key: Annotated[
        str | None, typer.Option("--tls-key", help="PEM private key (WARBLER_TLS_KEY_FILE).")
    ] = None,
) -> None:
    """Run the server (HTTP + WebSocket, or HTTPS + WSS with a certificate) until Ctrl-C or
    SIGTERM, then shut down gracefully."""
    import uvicorn

    from warbler.app import create_app
    from warbler.ops.shutdown import GracefulServer

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if tls_cert:
        overrides["tls_cert_file"] = tls_cert
    if tls_key:
        overrides["tls_key_file"] = tls_key
    try:
        settings = load_settings(config, **overrides)
    except ValueError as exc:  # pydantic's ValidationError: say which setting, not a traceback
        console.print(f"[red]error[/red] in the settings: {exc}")
        raise typer.Exit(2) from exc
    application = create_app(settings)
    server = GracefulServer(
        uvicorn.Config(
            application,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            ws_max_size=64 * 1024,
            ws_per_message_deflate=settings.ws_compression,
            # X-Forwarded-* are read by warbler.security.proxy (WARBLER_TRUSTED_PROXIES) only.
            proxy_headers=False,
            ssl_certfile=settings.tls_cert_file or None,
            ssl_keyfile=settings.tls_key_file or None,
            # After the drain: how long in-flight requests get before they are cancelled.
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        ),
        readiness=application.state.readiness,
        hub=application.state.services.hub,
        drain_seconds=settings.shutdown_drain_seconds,
    )
    server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's startup-failure status: the port, or the lifespan


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Bring the database schema up to date."""
    settings = load_settings(config)

    async def done(_: Services) -> None:
        console.print(f"schema up to date: {settings.effective_database_url}")

    _run(settings, done)


@app.command()
def demo(config: ConfigOpt = None) -> None:
    """Seed the demo tenant (users, a group, a direct chat, a bot). Safe to run twice."""
    from warbler.demo import seed

    result = _run(load_settings(config), lambda svc: seed(svc, DEMO_PASSWORD))
    table = Table(title=f"demo tenant '{result['tenant']}' (password: {DEMO_PASSWORD})")
    table.add_column("username")
    table.add_column("role")
    for username, role in result["users"]:
        table.add_row(username, role)
    console.print(table)
    if result["created"]:
        console.print(f"API key (admin scope, shown once): [bold]{result['api_key']}[/bold]")
    else:
        console.print("the demo tenant already existed; nothing changed")


@admin.command("create-tenant")
def create_tenant(
    slug: str, name: Annotated[str, typer.Option()] = "", config: ConfigOpt = None
) -> None:
    """Create a tenant."""
    out = _run(
        load_settings(config), lambda svc: svc.users.create_tenant(slug=slug, name=name or slug)
    )
    console.print(out)


@admin.command("create-user")
def create_user(
    tenant: str,
    username: str,
    password: Annotated[str | None, typer.Option(help="Omit for bots and visitors.")] = None,
    role: Annotated[str | None, typer.Option(help="owner|admin|agent|member")] = None,
    kind: Annotated[str, typer.Option(help="human|bot|visitor")] = "human",
    display_name: Annotated[str | None, typer.Option()] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a user in a tenant (by slug)."""

    async def work(svc: Services) -> dict[str, Any]:
        tenant_id = await _tenant_id(svc, tenant)
        return await svc.users.create_user(
            tenant_id, username=username, password=password, role=role, kind=kind,
            display_name=display_name,
        )  # fmt: skip

    console.print(_run(load_settings(config), work))


@admin.command("create-api-key")
def create_api_key(
    tenant: str,
    name: str,
    scopes: Annotated[list[str], typer.Option("--scope", help="Repeat; e.g. admin")] = ["admin"],  # noqa: B006
    config: ConfigOpt = None,
) -> None:
    """Create a tenant API key; the key is printed once."""

    async def work(svc: Services) -> dict[str, Any]:
        tenant_id = await _tenant_id(svc, tenant)
        return await svc.auth.create_api_key(tenant_id, name=name, scopes=scopes, created_by=None)

    out = _run(load_settings(config), work)
    console.print(f"{out['id']}  scopes={out['scopes']}")
    console.print(f"key (shown once): [bold]{out['key']}[/bold]")


async def _tenant_id(svc: Services, slug: str) -> str:
    tenant = await svc.users.tenant_by_slug(slug)
    if tenant is None:
        from warbler.errors import NotFound

        raise NotFound(f"no tenant '{slug}'")
    return tenant.id


def main() -> None:
    app()


if __name__ == "__main__":
    main()
