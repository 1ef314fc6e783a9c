"""The evaluation app's background work, each kind declared once (`core.jobs.JobKind`)."""

from __future__ import annotations

from core.jobs import JobKind
from core.models import Job

FID_REPORT = JobKind("fid", "evaluation.fid_report", Job.Queue.GPU)
CLASSIFIER_TRAIN = JobKind("classifier", "evaluation.classifier_train", Job.Queue.GPU)
AUGMENTATION = JobKind("augmentation", "neural.augmentation", Job.Queue.GPU)
COPYING = JobKind("copying", "evaluation.copying_check", Job.Queue.GPU)
CLASS_CHECK = JobKind("class_check", "evaluation.class_check")  # a small CNN's inference: CPU will do
