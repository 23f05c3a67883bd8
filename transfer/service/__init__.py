"""The service layer: use cases, one module per family or task, over the domain's ports.

- starting: exports.py (with selecting.py and requests.py), imports.py; a run's life in lifecycle.py;
- the watched container: blob_rule.py (the 60-day rule with what the app knows), blob_events.py,
  sweep.py, diagnosis.py;
- reconcile.py (with source_runs.py, after_success.py's steps and copy_step.py), cleanup.py;
- reads.py, health.py, pipeline_admin.py, inventory.py (operators);
- what they share: passes.py (the one pass loop and its policies), pipelines.py (the pipelines, their SAS
  and container), roles.py, memory.py (what a warm worker remembers);
- facade.py: TransferService, the one object the entry points call.
"""

from transfer.service.blob_events import BlobResult
from transfer.service.diagnosis import BlobDiagnosis
from transfer.service.facade import TransferService, UseCases
from transfer.service.health import Check
from transfer.service.inventory import IdentityNeeds, ListedPipeline, ListedRun, PipelineDeletion
from transfer.service.passes import Report
from transfer.service.pipeline_admin import PipelineSpec
from transfer.service.requests import Accepted

__all__ = [
    "Accepted",
    "BlobDiagnosis",
    "BlobResult",
    "Check",
    "IdentityNeeds",
    "ListedPipeline",
    "ListedRun",
    "PipelineDeletion",
    "PipelineSpec",
    "Report",
    "TransferService",
    "UseCases",
]
