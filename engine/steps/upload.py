"""The upload step: a local file becomes an asset the API can use (engine/uploads.py for
files over 32 MB)."""

from __future__ import annotations

from .. import records
from ..errors import CaBundleError, FileChangedError
from ..manifest import NodeRecord
from ..media import SIMPLE_UPLOAD_MAX_BYTES
from ..node_graph import GraphNode
from ..progress import Event, EventError
from ..run_context import RunContext
from ..runs import Outcome
from ..slots import Stopped
from ..uploads import DirectUpload, LocalFile


async def upload(ctx: RunContext, n: GraphNode) -> Outcome:
    file = n.node.file
    assert file is not None
    if file.local_path is None:
        # Not on disk (the recipe was loaded with optional media): only this node,
        # the one that must send the bytes, fails; nothing is recorded for it.
        message = f"{file.value}: not on disk"
        error = EventError("file_missing", message)
        ctx.report_failure(n, "failed", f"file_missing: {message}", error)
        return "failed"
    async with ctx.uploads:
        if ctx.stopping:
            raise Stopped
        try:
            size = file.local_path.stat().st_size
        except OSError as e:
            return ctx.fail(n, "file_unreadable", f"{file.value}: {e.strerror}", None)
        record = ctx.record_for(n)
        if size > SIMPLE_UPLOAD_MAX_BYTES or record.upload is not None:
            return await _direct_upload(ctx, n, record, size)
        record, _ = ctx.with_key(n, record)
        ctx.save(n, record)
        assert record.idempotency_key is not None
        try:
            asset = await ctx.sending(
                ctx.client.upload_asset(
                    file.local_path,
                    idempotency_key=record.idempotency_key,
                    media_type=file.media_type,
                )
            )
        except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
            # Gone or unreadable since the recipe was loaded: nothing was sent.
            message = f"{file.value}: {e.strerror}"
            return ctx.fail(n, "file_unreadable", message, status="failed")
    ctx.save(n, records.uploaded(record, asset.asset_id))
    ctx.reporter.event(Event(n.address, "uploaded", file.value, n.batch.label))
    return "completed"


async def _direct_upload(ctx: RunContext, n: GraphNode, record: NodeRecord, size: int) -> Outcome:
    """A file over 32 MB: the three-step direct upload (engine/uploads.py)."""
    file = n.node.file
    assert file is not None and file.local_path is not None and file.digest is not None

    def progress(sent: int, total: int) -> None:
        message = f"{file.value}: {sent / 2**20:.0f}/{total / 2**20:.0f} MiB"
        ctx.reporter.event(Event(n.address, "uploading", message, n.batch.label))

    flow = DirectUpload(
        ctx.client,
        LocalFile(
            file.local_path,
            file.local_path.name,
            file.media_type or "application/octet-stream",
            file.digest,
            size,
        ),
        save=lambda r: ctx.save(n, r),
        new_key=lambda r: ctx.with_key(n, r)[0],
        progress=progress,
    )
    try:
        asset = await ctx.sending(flow.run(record))
    except CaBundleError as e:  # an https upload_url, the API plain http: nothing was sent
        return ctx.fail(n, "ca_bundle_unreadable", f"{e.filename}: {e.strerror}", None)
    except OSError as e:
        return ctx.fail(n, "file_unreadable", f"{file.value}: {e.strerror or e}", None)
    except FileChangedError as e:
        message = f"{e}; it changed since it was planned: run apply again"
        return ctx.fail(n, "file_changed", message, "failed")
    ctx.save(n, records.uploaded(n.record or record, asset.asset_id))
    ctx.reporter.event(Event(n.address, "uploaded", file.value, n.batch.label))
    return "completed"
