"""FsOps: put a completed torrent's payload into the media library, resumably and audited.

The orchestrator builds one :class:`FsOpsService` and hands it every completed
torrent; see ``service.py`` for the calls and ``steps.py`` for what a job does.
"""

from revaer_core.backoff import Backoff
from revaer_core.fsops.errors import FsOpsError, UnsafePath
from revaer_core.fsops.pipeline import Pipeline, PipelineResult, StepFailed
from revaer_core.fsops.policy import FsOpsPolicy
from revaer_core.fsops.recorder import JobRecorder
from revaer_core.fsops.request import JobRequest
from revaer_core.fsops.service import FsOpsOutcome, FsOpsService
from revaer_core.fsops.steps import STEP_NAMES

__all__ = [
    "STEP_NAMES",
    "Backoff",
    "FsOpsError",
    "FsOpsOutcome",
    "FsOpsPolicy",
    "FsOpsService",
    "JobRecorder",
    "JobRequest",
    "Pipeline",
    "PipelineResult",
    "StepFailed",
    "UnsafePath",
]
