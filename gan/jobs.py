"""The gan app's background work, each kind declared once (`core.jobs.JobKind`)."""

from __future__ import annotations

from core.jobs import JobKind
from core.models import Job

DATASET_IMPORT = JobKind("import", "gan.dataset_import")
TRAINING = JobKind("training", "gan.training_run", Job.Queue.GPU)
SAMPLING = JobKind("sampling", "gan.sampling_run", Job.Queue.GPU)
