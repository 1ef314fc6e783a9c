from __future__ import annotations

from typing import Any

from django.db import models

from core.models import JobRecord, measured


def _dataset() -> models.ForeignKey[Any, Any]:
    """A dataset the record reads; kept while the record is (datasets do not list their evaluations)."""
    return models.ForeignKey("gan.Dataset", on_delete=models.PROTECT, related_name="+")


class FidReport(JobRecord):
    """FID, KID and precision/recall of a sampling run's patches against real patches of the same class."""

    sampling_run = models.ForeignKey("gan.SamplingRun", on_delete=models.CASCADE, related_name="fid_reports")
    real_dataset = _dataset()
    n_images = models.PositiveIntegerField(help_text="Images on each side.")
    seed = models.BigIntegerField(default=0, help_text="Draws the real (and synthetic) images used.")
    protocol = models.JSONField(default=dict, blank=True)
    # Frechet distance, KID and class agreement from our own tissue classifier, when one was trained.
    second_opinion = models.JSONField(default=dict, blank=True)
    fid = measured()
    kid_mean = measured()
    kid_std = measured()
    precision = measured()
    recall = measured()

    def __str__(self) -> str:
        return f"FID report {self.pk} of {self.sampling_run}"

    @property
    def standard(self) -> bool:
        return bool(self.protocol.get("standard_weights"))


class Classifier(JobRecord):
    """A tissue classifier trained on real patches: the second opinion beside FID."""

    dataset = _dataset()
    config = models.JSONField()
    weights = models.FileField(max_length=300, blank=True)
    metrics = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"classifier {self.pk} on {self.dataset}"


class AugmentationExperiment(JobRecord):
    """Train the tissue classifier with and without synthetic patches of one class; test on real ones."""

    train_dataset = _dataset()
    test_dataset = _dataset()
    sampling_run = models.ForeignKey("gan.SamplingRun", on_delete=models.PROTECT, related_name="+")
    tissue_class = models.CharField(max_length=8)
    # The stored protocol: amounts, fraction, seeds, classes and the classifier's config.
    config = models.JSONField()
    results = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"augmentation experiment {self.pk} ({self.tissue_class})"


class CopyingCheck(JobRecord):
    """Does a synthetic set hold (near-)copies of the real patches its generator learnt from?"""

    synthetic_dataset = models.ForeignKey("gan.Dataset", on_delete=models.CASCADE, related_name="+")
    reference_dataset = _dataset()
    # {"rule": ..., "spaces": {"pixels": SpaceResult.as_dict(), "classifier": ...}, "seconds": ...}
    results = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"copying check {self.pk} of {self.synthetic_dataset}"
