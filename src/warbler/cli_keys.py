"""``warbler keys``: encryption-at-rest keys — status, rotation, re-encryption.

The commands work on the database directly while nodes keep serving (docs/security.md,
"Key rotation"): every change is a short transaction, and nodes re-read a tenant's keys
every ``WARBLER_KEY_REFRESH_SECONDS``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from warbler.cli_kb import ConfigOpt, run_with_services, tenant_id_of
from warbler.config import load_settings
from warbler.errors import WarblerError
from warbler.security.encryption.reencrypt import reencrypt as reencrypt_values
from warbler.security.encryption.rotation import (
    generate_master_file,
    rotate_master,
    rotate_tenant,
    status,
)
from warbler.services import Services

keys = typer.Typer(
    help="Encryption at rest: key status, master and tenant key rotation, re-encryption.",
    no_args_is_help=True,
)
console = Console()


@keys.command("status")
def status_command(
    rows: Annotated[
        bool, typer.Option("--rows", help="Also count the stored values under each key.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """The master key, each tenant's keys, and what still needs rotating."""

    async def work(svc: Services) -> dict[str, Any]:
        await svc.keyring.bootstrap()
        return await status(svc.keyring, count_rows=rows)

    out = run_with_services(config, work)
    console.print(f"master key: {out['master_id']}  previous: {out['previous_master_id'] or '-'}")
    console.print(f"data keys by master key: {out['keys_by_master']}")
    console.print(f"secrets still sealed under a master key (v1): {out['legacy_sealed_secrets']}")
    table = Table(title="tenant keys")
    for col in ("tenant", "purpose", "version", "state", "kid", "master", "created"):
        table.add_column(col)
    for k in out["keys"]:
        table.add_row(
            k["tenant"] or k["tenant_id"], k["purpose"], str(k["version"]), k["state"],
            k["kid"], k["master_id"], f"{k['created_at']:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    console.print(table)
    if out["values_by_key"] is not None:
        counts = Table(title="stored values by key ('plain': not encrypted yet)")
        counts.add_column("column")
        counts.add_column("values by key id")
        for column, by_key in out["values_by_key"].items():
            counts.add_row(column, ", ".join(f"{k}: {n}" for k, n in sorted(by_key.items())))
        console.print(counts)


@keys.command("rotate-master")
def rotate_master_command(
    generate: Annotated[
        bool,
        typer.Option(
            "--generate",
            help="Key kept in DATA_DIR/secret.key: write a new one there first (the old one "
            "moves to secret.key.previous, which nodes also read).",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Re-wrap every data key under the current master key (WARBLER_SECRET_KEY), opening
    those still under the previous one (WARBLER_SECRET_KEY_PREVIOUS)."""
    if generate:
        try:
            generate_master_file(load_settings(config))
        except WarblerError as exc:
            console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
            raise typer.Exit(1) from exc

    async def work(svc: Services) -> dict[str, Any]:
        await svc.keyring.bootstrap()
        return await rotate_master(svc.keyring)

    out = run_with_services(config, work)
    console.print(
        f"master key {out['master_id']}: re-wrapped {out['rewrapped']} data keys, "
        f"re-sealed {out['resealed']} v1 secrets"
    )


@keys.command("rotate-tenant")
def rotate_tenant_command(
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    reencrypt: Annotated[
        bool, typer.Option("--reencrypt", help="Then move the tenant's values to the new key.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """A new active data key for a tenant; older keys keep decrypting what they wrote."""

    async def work(svc: Services) -> tuple[dict[str, Any], dict[str, int]]:
        tenant_id = await tenant_id_of(svc, tenant)
        await svc.keyring.bootstrap()
        key = await rotate_tenant(svc.keyring, tenant_id)
        moved = await _reencrypt(svc, tenant_id) if reencrypt else {}
        return key, moved

    key, moved = run_with_services(config, work)
    console.print(f"tenant {tenant}: data key {key['kid']} (version {key['version']}) is active")
    if reencrypt:
        _print_moved(moved)


@keys.command("reencrypt")
def reencrypt_command(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="One tenant's slug (default: all).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
    config: ConfigOpt = None,
) -> None:
    """Move every stored value to its tenant's active key, and encrypt what was stored
    before encryption at rest (rebuilding those messages' search entries). Re-runnable."""

    async def work(svc: Services) -> dict[str, int]:
        await svc.keyring.bootstrap()
        tenant_id = await tenant_id_of(svc, tenant) if tenant else None
        return await _reencrypt(svc, tenant_id, batch)

    _print_moved(run_with_services(config, work))


async def _reencrypt(svc: Services, tenant_id: str | None, batch: int = 500) -> dict[str, int]:
    return await reencrypt_values(
        svc.keyring, tenant_id=tenant_id, files=svc.files.store, kb_blobs=svc.kb.blobs,
        batch=batch,
    )  # fmt: skip


def _print_moved(moved: dict[str, int]) -> None:
    if not moved:
        console.print("everything is already under the active keys")
        return
    table = Table(title="re-encrypted")
    table.add_column("what")
    table.add_column("values", justify="right")
    for what, n in sorted(moved.items()):
        table.add_row(what, str(n))
    console.print(table)
