from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import JobRecord, measured


class Source(models.TextChoices):
    REAL = "real"
    SYNTHETIC = "synthetic"


class Dataset(models.Model):
    """A named collection of patches: an imported dataset, or the output of a sampling run."""

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.REAL)
    description = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False, help_text="Built from the bundled demo data.")
    # Every patch of a dataset is patch_size x patch_size px (128, the paper's, unless imported at another).
    patch_size = models.PositiveSmallIntegerField(default=128)
    # The stored patches' resolution (after resampling), for the reading page's scale bar; NULL: unknown
    # (synthetic sets have none of their own: a study takes its real pool's).
    microns_per_pixel = models.FloatField(null=True, blank=True)
    # Where it came from and how: source path, resampling filter, size, pipeline version and, for a
    # synthetic set, "generator" (`gan.services.datasets.Generator`: name, kind, checkpoint hash, ...).
    provenance = models.JSONField(default=dict, blank=True)
    # A synthetic set's class check: what the tissue classifier calls its patches, against the class they
    # were declared as (`evaluation.services.class_check`); empty until checked.
    class_check = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def generator(self) -> dict:
        return dict(self.provenance.get("generator") or {})


def patch_upload_to(instance: Patch, filename: str) -> str:
    return f"patches/{instance.dataset_id}/{filename}"


def patch_storage_name(dataset_id: int, digest: str) -> str:
    """Where a patch's PNG is stored: by dataset and content hash, in folders of 256 at most."""
    return f"patches/{dataset_id}/{digest[:2]}/{digest}.png"


class Patch(models.Model):
    """One square RGB patch (128 px unless its dataset says otherwise), real or synthetic, stored as a
    lossless PNG of the common pipeline."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="patches")
    tissue_class = models.CharField(max_length=8, db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    # SHA-256 of the derivative's pixels: deduplication within a dataset, overlap between datasets.
    content_hash = models.CharField(max_length=64, db_index=True)
    image = models.FileField(upload_to=patch_upload_to, max_length=300)
    original_name = models.CharField(max_length=500, blank=True)
    # For synthetic patches: the sampling run and the image's own seed (with the run's checkpoint and
    # class, it reproduces the image).
    sampling_run = models.ForeignKey(
        "SamplingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="patches"
    )
    seed = models.BigIntegerField(null=True, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "content_hash"], name="patch_unique_content_per_dataset"
            ),
            models.UniqueConstraint(
                fields=["sampling_run", "seed"],
                condition=models.Q(sampling_run__isnull=False),
                name="patch_unique_seed_per_sampling_run",
            ),
        ]
        indexes = [models.Index(fields=["dataset", "tissue_class"])]

    def __str__(self) -> str:
        return f"{self.tissue_class} patch {self.pk} of {self.dataset_id}"


class TrainingRun(JobRecord):
    """One training of the cGAN: its config, where it ran, and its live progress."""

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_runs")
    config = models.JSONField()
    # Where it ran: device, library versions (written when training starts).
    environment = models.JSONField(default=dict, blank=True)
    # Continue from this checkpoint (of this or another run) instead of fresh weights.
    init_checkpoint = models.ForeignKey(
        "Checkpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="continued_by"
    )
    # After training: sample this many patches of this class from the last checkpoint.
    sample_after = models.JSONField(default=dict, blank=True)
    step = models.PositiveIntegerField(default=0)
    epoch = models.PositiveIntegerField(default=0)
    loss_d_real = measured()
    loss_d_fake = measured()
    loss_g = measured()
    images_per_second = measured()
    seconds_left = measured()
    # [[step, loss_d_real, loss_d_fake, loss_g], ...] at every log interval.
    history = models.JSONField(default=list, blank=True)
    grid = models.FileField(upload_to="runs/", max_length=300, blank=True)
    grid_step = models.PositiveIntegerField(null=True, blank=True)
    # `neural.health`: {"reference": {class: spread of its real patches}, "spreads": [[step,
    # {class: spread of its fixed-noise samples}], ...], "warnings": [{kind, step, last_step, message}]}.
    health = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_demo(self) -> bool:
        return bool(self.config.get("demo"))

    @property
    def steps(self) -> int:
        return int(self.config.get("steps", 0))


class Checkpoint(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    file = models.FileField(max_length=300)
    size = models.BigIntegerField(default=0)
    # The file's SHA-256 when it was published: a copy fetched from storage is checked against it.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="checkpoint_unique_step")]

    def __str__(self) -> str:
        return f"{self.run} step {self.step}"


class SamplingRun(JobRecord):
    """Synthetic patches of one class from one checkpoint; image i has seed `seed + i`."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, related_name="sampling_runs")
    tissue_class = models.CharField(max_length=8)
    count = models.PositiveIntegerField()
    seed = models.BigIntegerField(default=0)
    dataset = models.OneToOneField(Dataset, on_delete=models.PROTECT, related_name="sampling_run")
    environment = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.count} {self.tissue_class} from {self.checkpoint}"
