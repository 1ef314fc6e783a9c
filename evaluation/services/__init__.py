"""Writes of the evaluation app: FID reports, the tissue classifier, augmentation experiments."""

from evaluation.services.augmentation import augmentation_job, augmentation_plan, augmentation_start
from evaluation.services.class_check import (
    class_check_job,
    class_check_run,
    class_check_start,
    class_check_unchecked,
    classifier_train_then_check,
)
from evaluation.services.classifier import classifier_load, classifier_train_job, classifier_train_start
from evaluation.services.common import ClassifierError, EvaluationError, ExperimentError, ReportError
from evaluation.services.copying import copying_check_job, copying_check_start
from evaluation.services.fid import fid_report_job, fid_report_start

__all__ = [
    "ClassifierError",
    "EvaluationError",
    "ExperimentError",
    "ReportError",
    "augmentation_job",
    "augmentation_plan",
    "augmentation_start",
    "class_check_job",
    "class_check_run",
    "class_check_start",
    "class_check_unchecked",
    "classifier_load",
    "classifier_train_job",
    "classifier_train_start",
    "classifier_train_then_check",
    "copying_check_job",
    "copying_check_start",
    "fid_report_job",
    "fid_report_start",
]
