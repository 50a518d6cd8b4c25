"""Operations group: the nightly backup, materialized by its own schedule and never by `refresh_everything`."""

import dagster as dg

from optimum.settings import Settings
from orchestration.backup import create_backup

OPERATIONS_GROUP = "operations"


@dg.asset(group_name=OPERATIONS_GROUP, description="One backup of all state the landing zone cannot rebuild.")
def backup(settings: dg.ResourceParam[Settings]) -> dg.MaterializeResult:
    result = create_backup(settings)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "size_bytes": dg.MetadataValue.int(result.size_bytes),
            "duration_s": dg.MetadataValue.float(round(result.duration_s, 2)),
            "sha256": dg.MetadataValue.text(result.sha256),
            "parts": dg.MetadataValue.json(result.parts),
            "removed_by_retention": dg.MetadataValue.json([path.name for path in result.removed]),
        }
    )


operations_assets = [backup]
