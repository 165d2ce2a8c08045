"""``warbler privacy``: apply retention policies now (what the background sweeper does)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from warbler.cli_kb import ConfigOpt, run_with_services, tenant_id_of
from warbler.services import Services

privacy = typer.Typer(help="Privacy: retention sweeps.", no_args_is_help=True)
console = Console()


@privacy.command("sweep")
def sweep(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant (slug); default: all.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Delete what every tenant's retention policy says is too old, and expired export
    archives, once; each tenant's sweep is recorded in its audit log (retention.sweep)."""

    async def work(svc: Services) -> dict[str, dict[str, int]]:
        if tenant is None:
            return await svc.privacy.sweeper.run_once()
        tenant_id = await tenant_id_of(svc, tenant)
        return {tenant_id: await svc.privacy.retention.sweep(tenant_id, force=True) or {}}

    results = run_with_services(config, work)
    table = Table(title="retention sweep")
    table.add_column("tenant")
    table.add_column("deleted")
    for tenant_id, counts in results.items():
        done = {k: v for k, v in counts.items() if v}
        table.add_row(tenant_id, ", ".join(f"{k}={v}" for k, v in done.items()) or "nothing")
    console.print(table)
