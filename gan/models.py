from __future__ import annotations

from django.conf import settings
from django.db import models


class Source(models.TextChoices):
    REAL = "real"
    SYNTHETIC = "synthetic"


class Dataset(models.Model):
    """A named collection of patches: an imported dataset, or the output of a sampling run."""

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.REAL)
    description = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False, help_text="Built from the bundled demo data.")
    # Where it came from and how: source path, resampling filter, pipeline version, import options.
    provenance = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def patch_upload_to(instance: Patch, filename: str) -> str:
    return f"patches/{instance.dataset_id}/{filename}"


class Patch(models.Model):
    """One 128x128 RGB patch, real or synthetic, stored as a lossless PNG of the common pipeline."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="patches")
    tissue_class = models.CharField(max_length=8, db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    # SHA-256 of the derivative's pixels: deduplication within a dataset, overlap between datasets.
    content_hash = models.CharField(max_length=64, db_index=True)
    image = models.FileField(upload_to=patch_upload_to, max_length=300)
    original_name = models.CharField(max_length=500, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "content_hash"], name="patch_unique_content_per_dataset"
            )
        ]
        indexes = [models.Index(fields=["dataset", "tissue_class"])]

    def __str__(self) -> str:
        return f"{self.tissue_class} patch {self.pk} of {self.dataset_id}"
