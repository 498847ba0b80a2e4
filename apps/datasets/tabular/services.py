"""The services of a tabular dataset version that touch the database and storage: the upload
check, the ingestion on the worker, the customer's confirmation of the columns and the preview.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import tempfile
from collections.abc import Generator, Iterator
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.audit.services import audit_record
from apps.core import csv_safe
from apps.core.errors import Conflict, InvalidInput, QuotaExceeded, check_may_change
from apps.core.jobs import JobStatus, ProgressReporter, job_finish
from apps.core.text import human_size
from apps.datasets.ingest.quota import forget_stored
from apps.datasets.ingest.run import IngestionStopped
from apps.datasets.models import DatasetKind, DatasetVersion
from apps.datasets.storage import storage_quota_check
from apps.datasets.tabular.health import tabular_health
from apps.datasets.tabular.profiling import (
    ROLES,
    TYPES,
    column_entry,
    detect_schema,
    detect_type,
    type_problems,
)
from apps.datasets.tabular.reading import Table, max_bytes, refuse, scan_csv
from apps.datasets.tabular.splits import SPLIT_COLUMN, assign_splits, split_ratios
from workers.ml.cells import SPLITS

PREVIEW_PAGE_SIZE = 50


# --- the upload and the worker ----------------------------------------------------------------


def inspect_csv(upload: Any) -> str:
    """Check an uploaded CSV from end to end before it is kept; returns the source kind "csv".

    Raises InvalidInput naming the problem, its row and column, and how to fix it.
    """
    name = upload.name
    if upload.size > max_bytes():
        raise refuse(
            _("'%(name)s' is %(size)s; a table may be %(limit)s at most. Keep the rows you need.")
            % {"name": name, "size": human_size(upload.size), "limit": human_size(max_bytes())}
        )
    upload.seek(0)
    try:
        table = scan_csv(upload.file, source_name=name)
    finally:
        upload.seek(0)
    for column in table.columns:
        profile = column.profile()
        if detect_type(profile) == "numeric":
            problems = type_problems(column.name, "numeric", profile)
            if problems:
                raise refuse(problems[0]["message"])
    return "csv"


def _table_path(version: DatasetVersion) -> str:
    return (
        f"orgs/{version.organization_id}/datasets/{version.dataset_id}/v{version.number}/table.csv"
    )


def ingest_tabular(version: DatasetVersion) -> None:
    """Read a tabular version's CSV into the canonical table, its schema, splits and health."""
    reporter = ProgressReporter(version)
    reporter.report(force=True, message=_("Reading the table"), progress=0.0)
    ratios = split_ratios(version.split_ratios)
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as staging:
        writer = csv.writer(staging, lineterminator="\n")
        with version.source.open("rb") as source:
            table = scan_csv(
                source,
                source_name=version.source_name,
                sink=writer.writerow,
                progress=lambda rows: reporter.report(
                    progress=0.8 * min(1.0, source.tell() / max(1, version.source_size)),
                    message=_("Read %(n)d rows") % {"n": rows},
                ),
            )
        schema = detect_schema(table)
        splits = assign_splits(table.rows, seed=version.split_seed, ratios=ratios)
        schema["split"] = {
            "column": SPLIT_COLUMN,
            "seed": version.split_seed,
            "ratios": ratios,
            "counts": {name: splits.count(name) for name in SPLITS},
        }
        reporter.report(force=True, message=_("Writing the table"), progress=0.85)
        if reporter.last_rows == 0:  # cancelled (its organization suspended): store nothing
            raise IngestionStopped()
        staging.seek(0)
        stored_name = _store_table(version, csv.reader(staging), splits)
    _finish(version, table, schema, ratios, stored_name)


def _store_table(version: DatasetVersion, rows: Iterator[list[str]], splits: list[str]) -> str:
    """Write the canonical table (the staged rows plus their split) to storage; its name."""
    header = next(rows)
    with tempfile.TemporaryFile() as final:
        text = io.TextIOWrapper(final, encoding="utf-8", newline="")
        csv_safe.write_rows(
            text,
            itertools.chain(
                [[*header, SPLIT_COLUMN]],
                ([*row, split] for row, split in zip(rows, splits, strict=True)),
            ),
        )
        text.flush()
        text.detach()
        size = final.tell()
        final.seek(0)
        try:
            # Counted from what the organization stores with the upload, earlier tables gone.
            storage_quota_check(
                organization=version.organization,
                adding_bytes=size - version.stored_bytes,
                what=_("Storing the table read from '%(name)s'") % {"name": version.source_name},
            )
        except QuotaExceeded as exceeded:
            forget_stored(version, upload_too=True)
            kept = _("The ingestion stopped there and kept nothing, the upload included.")
            raise QuotaExceeded(f"{exceeded.message} {kept}") from None
        path = _table_path(version)
        if version.data_file:
            version.data_file.delete(save=False)
        default_storage.delete(path)
        return default_storage.save(path, File(final, name="table.csv"))


def _finish(
    version: DatasetVersion,
    table: Table,
    schema: dict[str, Any],
    ratios: dict[str, float],
    stored_name: str,
) -> None:
    message = ngettext(
        "Ready: %(n)d row, %(c)d columns; check the detected columns and confirm them",
        "Ready: %(n)d rows, %(c)d columns; check the detected columns and confirm them",
        table.rows,
    ) % {"n": table.rows, "c": len(table.columns)}
    job_finish(
        version,
        status=JobStatus.SUCCEEDED,
        message=message,
        data_file=stored_name,
        schema=schema,
        health=tabular_health(schema, table.rows),
        row_count=table.rows,
        split_ratios=ratios,
        stored_bytes=default_storage.size(stored_name),
        confirmed_at=None,
    )


# --- after ingestion: confirmation and preview ------------------------------------------------


def tabular_version_confirm(
    *,
    version: DatasetVersion,
    user: Any,
    target: str | None = None,
    columns: dict[str, dict[str, str]] | None = None,
    role: str | None = None,
) -> DatasetVersion:
    """Record the customer's check of the detected columns: types, roles and the target.

    Every change is validated against what the cells hold (a column declared numeric must
    hold only numbers); the health report is recomputed and `confirmed_at` set. Members
    confirm tables they uploaded, admins and owners any (`role`: the caller's, or None to read
    it from their membership); ServiceError (403) otherwise.
    """
    check_may_change(
        role=role,
        user=user,
        created_by_id=version.owner_id,
        organization_id=version.organization_id,
        what=f"'{version.dataset.name}'",
        action=_("confirm the columns of"),
    )
    columns = columns or {}
    with transaction.atomic():
        version = (
            DatasetVersion.objects.for_organization(version.organization_id)
            .select_for_update()
            .select_related("dataset")
            .get(pk=version.pk)
        )
        _require_ready_table(version)
        schema = version.schema
        target = _confirmed_target(schema, columns, target)
        updated = [
            _confirmed_column(column, columns.get(column["name"]) or {}, target)
            for column in schema["columns"]
        ]
        target_column = next((c for c in updated if c["name"] == target), None)
        if target_column is not None and target_column["type"] != "numeric":
            raise InvalidInput(
                _(
                    "The target '%(column)s' is %(type)s; the target must be numeric (this "
                    "portal trains regression models)."
                )
                % {"column": target, "type": target_column["type"]},
                field="target",
            )
        schema = {**schema, "columns": updated, "target": target}
        version.schema = schema
        version.health = tabular_health(schema, version.row_count)
        version.confirmed_at = timezone.now()
        version.save(update_fields=["schema", "health", "confirmed_at", "updated_at"])
        audit_record(
            organization=version.organization,
            actor=user,
            action="dataset_version.confirm",
            target=version,
            data={"target": target, "columns": columns},
        )
    return version


def _confirmed_target(
    schema: dict[str, Any], columns: dict[str, dict[str, str]], target: str | None
) -> str | None:
    """The target the customer chose (as `target` or as a column's role), else the detected one."""
    by_name = {c["name"]: c for c in schema["columns"]}
    unknown = [name for name in [*columns, *([target] if target else [])] if name not in by_name]
    if unknown:
        raise InvalidInput(
            _("Unknown column '%(column)s'; the table's columns are: %(columns)s.")
            % {"column": unknown[0], "columns": ", ".join(by_name)},
            field="columns" if unknown[0] in columns else "target",
        )
    chosen = [
        n
        for n, change in columns.items()
        if isinstance(change, dict) and change.get("role") == "target"
    ]
    if len(chosen) > 1 or (chosen and target and chosen[0] != target):
        raise InvalidInput(
            _("Choose one target: %(columns)s were all given as the target.")
            % {"columns": ", ".join(sorted({*chosen, *([target] if target else [])}))},
            field="target",
        )
    return target or (chosen[0] if chosen else schema.get("target"))


def _confirmed_column(column: dict[str, Any], change: Any, target: str | None) -> dict[str, Any]:
    """A schema column with the customer's change applied, checked against its cells."""
    name = column["name"]
    if not isinstance(change, dict):
        raise InvalidInput(
            _("columns.%(column)s must be an object with 'type' and/or 'role'.") % {"column": name},
            field="columns",
        )
    kind = change.get("type", column["type"])
    role = change.get("role", column["role"])
    if kind not in TYPES:
        raise InvalidInput(
            _("Column '%(column)s': type must be one of %(types)s; got '%(got)s'.")
            % {"column": name, "types": ", ".join(TYPES), "got": kind},
            field="columns",
        )
    if role not in ROLES:
        raise InvalidInput(
            _("Column '%(column)s': role must be one of %(roles)s; got '%(got)s'.")
            % {"column": name, "roles": ", ".join(ROLES), "got": role},
            field="columns",
        )
    if name == target:
        if "role" in change and role != "target":
            raise InvalidInput(
                _("Column '%(column)s' is the target; it cannot have the role %(role)s.")
                % {"column": name, "role": role},
                field="columns",
            )
        role = "target"
    elif role == "target":
        role = "feature"  # the target moved to another column
    if kind == "text-id" and role == "feature":
        raise InvalidInput(
            _(
                "Column '%(column)s' is text-id (a name or code per market) and cannot "
                "be a feature; declare it categorical or give it the role id or ignore."
            )
            % {"column": name},
            field="columns",
        )
    entry = column_entry(name, column["index"], kind, role, column["profile"])
    errors = [p for p in entry["problems"] if p["severity"] == "blocking"]
    if kind != column["type"] and errors:
        raise InvalidInput(errors[0]["message"], field="columns")
    return entry


def _require_ready_table(version: DatasetVersion) -> None:
    if version.dataset.kind != DatasetKind.TABULAR:
        raise InvalidInput(
            _("Version %(number)d of '%(dataset)s' holds images, not a table.")
            % {"number": version.number, "dataset": version.dataset.name}
        )
    if not version.is_ready or not version.data_file or not version.schema.get("columns"):
        raise Conflict(
            _("The table is not ready (%(status)s); try again once it has been read.")
            % {"status": version.get_status_display()}
        )


def iter_table(version: DatasetVersion) -> Generator[list[str], None, None]:
    """The canonical table's rows, header first (its last column is __split)."""
    with version.data_file.open("rb") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        try:
            yield from csv.reader(text)
        finally:
            text.detach()


def tabular_page(
    version: DatasetVersion, *, page: int = 1, page_size: int = PREVIEW_PAGE_SIZE
) -> dict[str, Any]:
    """One page of the canonical table, for a preview: its columns and `page_size` rows."""
    _require_ready_table(version)
    pages = max(1, math.ceil(version.row_count / page_size))
    if page < 1 or page > pages:
        raise InvalidInput(
            _("page must be between 1 and %(pages)d; got %(page)d.")
            % {"pages": pages, "page": page},
            field="page",
        )
    rows = iter_table(version)
    header = next(rows)
    start = (page - 1) * page_size
    chosen = list(itertools.islice(rows, start, start + page_size))
    rows.close()
    return {
        "count": version.row_count,
        "page": page,
        "pages": pages,
        "page_size": page_size,
        "columns": header,
        "rows": chosen,
    }
