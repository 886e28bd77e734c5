"""``revaer fsops``: FsOps jobs and their attempt history from the store, and the operator's retry.

A retry goes through the running daemon, which starts the job at once; with
no daemon answering it is written to the store for the daemon's next start.
"""

from __future__ import annotations

from typing import Any

import click

from revaer_core.api import operations
from revaer_core.api.models import JobPage
from revaer_core.cli.client import DaemonUnreachable
from revaer_core.cli.context import CliContext, pass_cli
from revaer_core.cli.output import (
    JSON_HELP,
    emit_fields,
    emit_json,
    emit_page,
    emit_table,
    human_time,
    paging_options,
)
from revaer_core.jobs import FsJob, JobStatus
from revaer_core.serialize import from_json


@click.group("fsops")
def fsops_group() -> None:
    """FsOps jobs (moving finished torrents into the library): list, show with history, retry."""


@fsops_group.command("jobs")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in JobStatus]),
    help="Only jobs in this status; repeat for several.",
)
@paging_options
@pass_cli
def jobs_command(
    ctx: CliContext, statuses: tuple[str, ...], limit: int, cursor: str | None, every_page: bool, as_json: bool
) -> None:
    """List FsOps jobs, oldest first: status, attempts, transfer mode and last error."""
    query = operations.job_query(statuses=statuses, limit=limit, cursor=cursor)
    if every_page:
        page = JobPage(items=tuple(operations.walk_jobs(ctx.store, query)))
    else:
        page = operations.list_jobs(ctx.store, query)
    emit_page(
        page,
        as_json=as_json,
        command="revaer fsops jobs",
        headers=["TORRENT", "STATUS", "ATTEMPT", "MODE", "UPDATED", "DESTINATION", "LAST ERROR"],
        row=lambda j: (
            j.torrent_id,
            j.status.value,
            j.attempt,
            j.transfer_mode.value if j.transfer_mode else None,
            human_time(j.updated_at),
            j.destination,
            j.last_error,
        ),
    )


@fsops_group.command("show")
@click.argument("torrent_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_cli
def show_command(ctx: CliContext, torrent_id: str, as_json: bool) -> None:
    """Show the FsOps job of torrent ID (a UUID) and every transition of every attempt."""
    detail = operations.job_detail(ctx.store, operations.parse_torrent_id(torrent_id))
    if as_json:
        emit_json(detail)
        return
    emit_fields(_job_fields(detail.job))
    click.echo()
    emit_table(
        ["SEQ", "AT", "EVENT", "STATUS", "ATTEMPT", "MODE", "DESTINATION", "DETAIL"],
        [
            (
                h.seq,
                human_time(h.at),
                h.event.value,
                h.status.value,
                h.attempt,
                h.transfer_mode.value if h.transfer_mode else None,
                h.destination,
                h.detail,
            )
            for h in detail.history
        ],
    )


@fsops_group.command("retry")
@click.argument("torrent_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@pass_cli
def retry_command(ctx: CliContext, torrent_id: str, as_json: bool) -> None:
    """Run the failed FsOps job of torrent ID (a UUID) again.

    A running daemon starts the new attempt at once. When no daemon answers,
    the job is set back to pending in the store and the daemon runs it at its
    next start. Only a failed job can be retried; any other status exits 2
    and changes nothing.
    """
    parsed = operations.parse_torrent_id(torrent_id)
    try:
        answer = ctx.daemon.request("POST", f"/v1/fsops/jobs/{parsed}/retry")
    except DaemonUnreachable:
        job = operations.retry_job(ctx.store, parsed)
        body: Any = job
        then = "no daemon answers, so it runs at the daemon's next start ('revaer run')"
    else:
        body = answer.body
        job = from_json(FsJob, body)
        then = "the running daemon starts it now (with [fsops] enabled; otherwise it stays pending)"
    if as_json:
        emit_json(body)
        return
    click.echo(f"job of torrent {job.torrent_id} is {job.status.value} after {job.attempt} attempt(s): {then}")


def _job_fields(j: FsJob) -> list[tuple[str, object]]:
    return [
        ("torrent", j.torrent_id),
        ("status", j.status.value),
        ("attempt", j.attempt),
        ("source", j.source),
        ("destination", j.destination),
        ("transfer mode", j.transfer_mode.value if j.transfer_mode else None),
        ("last error", j.last_error),
        ("created", human_time(j.created_at)),
        ("updated", human_time(j.updated_at)),
    ]
