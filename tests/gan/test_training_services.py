from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core.models import Job
from gan.models import Checkpoint, Dataset, SamplingRun, TrainingRun
from gan.services import sampling as sampling_services
from gan.services import training as training_services
from gan.services.checkpoints import checkpoint_local
from gan.services.training import RunError
from neural.sampling import generate, load_generator
from tests.gan.fixtures import TINY

pytestmark = pytest.mark.django_db


def _published_corrupt(checkpoint: Checkpoint, data: bytes) -> None:
    """A checkpoint whose file was already broken when it was published (a row from before hashes were
    kept): what storage holds is all there is to load."""
    default_storage.delete(checkpoint.file.name)
    default_storage.save(checkpoint.file.name, ContentFile(data))
    Checkpoint.objects.filter(pk=checkpoint.pk).update(sha256="")
    checkpoint.sha256 = ""


def _start(dataset: Dataset, **overrides: Any) -> TrainingRun:
    config = training_services.config_build(overrides=TINY | overrides, demo=True)
    return training_services.training_run_start(dataset=dataset, config=config, enqueue=False)


def test_run_goes_to_the_gpu_queue_after_commit(
    lym_tum: Dataset, django_capture_on_commit_callbacks: Any
) -> None:
    config = training_services.config_build(overrides=TINY, demo=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = training_services.training_run_start(dataset=lym_tum, config=config)
    assert run.job.queue == "gpu" and run.job.task_name == "gan.training_run" and run.job.state == "queued"
    assert len(callbacks) == 1
    assert run.is_demo and run.config["steps"] == 6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_g": 0}, "lr_g must be > 0"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"classes": ["LYM", "FOO"]}, "unknown class"),
    ],
)
def test_invalid_config_is_refused_before_anything_is_created(
    lym_tum: Dataset, overrides: dict, message: str
) -> None:
    with pytest.raises(RunError, match=message):
        _start(lym_tum, **overrides)
    assert not Job.objects.exists() and not TrainingRun.objects.exists()


def test_a_class_missing_from_the_dataset_is_refused(lym_tum: Dataset) -> None:
    with pytest.raises(RunError, match="no patches of class.*ADI"):
        _start(lym_tum, classes=["LYM", "ADI"])
    assert not TrainingRun.objects.exists()


def test_training_records_progress_grid_checkpoints_and_environment(
    lym_tum: Dataset, media_root: Path
) -> None:
    run = _start(lym_tum)
    outcome = training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    run.refresh_from_db()
    assert outcome == {"status": "finished", "step": 6, "resumed_from": None}
    assert run.step == 6 and [row[0] for row in run.history] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(row[1:]).all() for row in run.history)
    assert run.images_per_second and run.images_per_second > 0
    assert list(run.checkpoints.values_list("step", flat=True)) == [3, 6]
    assert run.grid_step == 6 and run.grid.name.endswith("grid-0000006.png")
    assert run.environment["device"] == "cpu" and "torch" in run.environment
    assert len(list((media_root / "runs" / str(run.pk)).glob("*.png"))) == 1  # old grids are removed


def test_a_crashed_run_continues_from_its_last_checkpoint(lym_tum: Dataset, media_root: Path) -> None:
    run = _start(lym_tum, steps=9)
    uninterrupted = _start(lym_tum, steps=9)
    training_services.training_run_execute(run=uninterrupted, context=None, device_preference="cpu")

    class Crash(Exception):
        pass

    def crash_at_step_5(progress: Any) -> None:
        if progress.step == 5:
            raise Crash

    original = training_services._RunRecorder.progress
    try:
        training_services._RunRecorder.progress = lambda self, p: (original(self, p), crash_at_step_5(p))  # type: ignore[method-assign]
        with pytest.raises(Crash):
            training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    finally:
        training_services._RunRecorder.progress = original  # type: ignore[method-assign]
    run.refresh_from_db()
    assert list(run.checkpoints.values_list("step", flat=True)) == [3]
    # The checkpoint at step 6 was being written when the worker died: a truncated file is passed over.
    broken = default_storage.save(f"checkpoints/run-{run.pk}/step-0000006.pt", ContentFile(b"cut short"))
    Checkpoint.objects.create(run=run, step=6, file=broken)

    outcome = training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    run.refresh_from_db()
    assert outcome["resumed_from"] == 3 and outcome["step"] == 9
    assert [row[0] for row in run.history] == list(range(1, 10))  # steps after 3 recorded once
    assert list(run.checkpoints.values_list("step", flat=True)) == [3, 6, 9]
    final = {
        c.run_id: torch.load(checkpoint_local(c), weights_only=True)
        for c in Checkpoint.objects.filter(step=9)
    }
    a, b = final[run.pk]["generator"], final[uninterrupted.pk]["generator"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_continuing_from_a_checkpoint_of_another_architecture_is_refused(
    lym_tum: Dataset, media_root: Path
) -> None:
    run = _start(lym_tum, steps=3)
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    checkpoint = run.checkpoints.get(step=3)
    wider = training_services.config_build(overrides=TINY | {"g_filters": 16}, demo=True)
    with pytest.raises(RunError, match="another architecture: g_filters 8 != 16"):
        training_services.training_run_start(
            dataset=lym_tum, config=wider, init_checkpoint=checkpoint, enqueue=False
        )
    other_classes = training_services.config_build(overrides=TINY | {"classes": ["TUM", "LYM"]}, demo=True)
    with pytest.raises(RunError, match="class set differs"):
        training_services.training_run_start(
            dataset=lym_tum, config=other_classes, init_checkpoint=checkpoint, enqueue=False
        )
    _published_corrupt(checkpoint, b"\x00" * 100)
    same = training_services.config_build(overrides=TINY, demo=True)
    with pytest.raises(RunError, match="corrupt, truncated or not a checkpoint"):
        training_services.training_run_start(
            dataset=lym_tum, config=same, init_checkpoint=checkpoint, enqueue=False
        )


@pytest.fixture
def trained_checkpoint(lym_tum: Dataset, media_root: Path) -> Checkpoint:
    run = _start(lym_tum, steps=3)
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    return run.checkpoints.get(step=3)


def test_sampling_stores_reproducible_patches_without_duplicates_on_retry(
    trained_checkpoint: Checkpoint,
) -> None:
    sampling = sampling_services.sampling_run_start(
        checkpoint=trained_checkpoint, tissue_class="lym", count=7, seed=100, enqueue=False
    )
    assert sampling.job.queue == "gpu" and sampling.dataset.source == "synthetic" and sampling.dataset.is_demo
    first = sampling_services.sampling_run_execute(
        run=sampling, context=None, device_preference="cpu", batch_size=3
    )
    again = sampling_services.sampling_run_execute(
        run=sampling, context=None, device_preference="cpu", batch_size=3
    )
    assert first["stored"] == again["stored"] == 7
    patches = list(sampling.patches.order_by("seed"))
    assert [p.seed for p in patches] == list(range(100, 107))
    assert {p.tissue_class for p in patches} == {"LYM"} and {p.source for p in patches} == {"synthetic"}

    from gan.imaging import decode_png_array

    generator, _, _ = load_generator(checkpoint_local(trained_checkpoint), torch.device("cpu"))
    _, images = next(generate(generator, class_index=0, seeds=[104], device=torch.device("cpu")))
    with patches[4].image.open("rb") as handle:
        assert np.array_equal(decode_png_array(handle.read()), images[0])


def test_sampling_requests_are_checked_against_the_checkpoint(trained_checkpoint: Checkpoint) -> None:
    with pytest.raises(RunError, match="class 'ADI' is not one the checkpoint was trained on"):
        sampling_services.sampling_run_start(checkpoint=trained_checkpoint, tissue_class="ADI", enqueue=False)
    with pytest.raises(RunError, match="count must be between 1"):
        sampling_services.sampling_run_start(
            checkpoint=trained_checkpoint, tissue_class="LYM", count=0, enqueue=False
        )
    assert not Dataset.objects.filter(source="synthetic").exists()


def test_a_cancelled_run_keeps_a_checkpoint_of_where_it_stopped(lym_tum: Dataset, media_root: Path) -> None:
    from core.jobs import job_run
    from core.services import job_cancel

    run = _start(lym_tum, steps=50)
    Job.objects.filter(pk=run.job_id).update(state=Job.State.RUNNING)  # as if a worker had started it
    job_cancel(job=run.job)
    Job.objects.filter(pk=run.job_id).update(state=Job.State.QUEUED)
    state = job_run(job_id=str(run.job_id), worker="w", body=training_services.training_run_job)
    assert state == "cancelled"
    run.refresh_from_db()
    assert run.step < 50
    assert list(run.checkpoints.values_list("step", flat=True)) == [run.step]


def test_a_run_that_fails_later_is_marked_failed_with_its_reason(
    lym_tum: Dataset, media_root: Path, manager_client: Any
) -> None:
    from django.urls import reverse

    from core.jobs import job_run

    first = _start(lym_tum, steps=3)
    training_services.training_run_execute(run=first, context=None, device_preference="cpu")
    checkpoint = first.checkpoints.get(step=3)
    config = training_services.config_build(overrides=TINY | {"steps": 6}, demo=True)
    run = training_services.training_run_start(
        dataset=lym_tum, config=config, init_checkpoint=checkpoint, enqueue=False
    )
    _published_corrupt(checkpoint, b"gone bad after the run was queued")
    assert job_run(job_id=str(run.job_id), worker="w", body=training_services.training_run_job) == "failed"
    run.job.refresh_from_db()
    assert "corrupt, truncated or not a checkpoint" in run.job.error
    page = manager_client.get(reverse("gan:run_detail", args=[run.pk]))
    assert b"corrupt, truncated or not a checkpoint" in page.content


def test_the_sampling_a_run_asked_for_starts_once_even_when_its_job_runs_again(
    trained_checkpoint: Checkpoint,
) -> None:
    """The training job delivered again after its worker died between starting the sampling and
    finishing the job: the second delivery finds the sampling and starts no other."""
    run = trained_checkpoint.run
    TrainingRun.objects.filter(pk=run.pk).update(sample_after={"tissue_class": "lym", "count": 3, "seed": 1})
    run.refresh_from_db()
    first = training_services.sampling_after_training(run=run)
    second = training_services.sampling_after_training(run=run)
    assert first is not None and second is not None and first.pk == second.pk
    assert SamplingRun.objects.filter(checkpoint=trained_checkpoint).count() == 1


def test_sampling_outputs_have_names_a_study_manager_recognises(trained_checkpoint: Checkpoint) -> None:
    from django.utils import timezone

    first = sampling_services.sampling_run_start(
        checkpoint=trained_checkpoint, tissue_class="LYM", count=7, enqueue=False
    )
    again = sampling_services.sampling_run_start(
        checkpoint=trained_checkpoint, tissue_class="LYM", count=7, enqueue=False
    )
    run = trained_checkpoint.run.name
    expected = f"{run}, step 3: 7 LYM ({timezone.localdate():%Y-%m-%d})"
    assert first.dataset.name == expected and again.dataset.name == f"{expected} #2"


def test_a_stored_checkpoint_changed_after_publication_is_never_loaded(
    trained_checkpoint: Checkpoint, settings: Any, tmp_path: Path
) -> None:
    published = trained_checkpoint.sha256
    assert len(published) == 64 and trained_checkpoint.file.name.startswith("checkpoints/")
    original = default_storage.open(trained_checkpoint.file.name).read()
    default_storage.delete(trained_checkpoint.file.name)
    default_storage.save(trained_checkpoint.file.name, ContentFile(original[:-10] + b"0123456789"))
    # The host that trained it holds the published bytes in its cache, and uses those.
    assert checkpoint_local(trained_checkpoint).read_bytes() == original
    # Another host (an empty cache) fetches the stored file, finds it is not what was published, refuses.
    settings.WORKER_CACHE_DIR = tmp_path / "another-host"
    with pytest.raises(RunError, match="is not the file that was published"):
        sampling_services.sampling_run_start(checkpoint=trained_checkpoint, tissue_class="LYM", enqueue=False)


def test_every_start_is_kept_also_when_a_start_dies_before_training(
    lym_tum: Dataset, media_root: Path, monkeypatch: Any
) -> None:
    """A run's record of its starts survives a start killed while its pack is built (the environment is
    rewritten first), and the next start is added after the earlier ones."""
    run = _start(lym_tum, steps=3)
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    run.refresh_from_db()
    (first,) = run.environment["starts"]
    assert first["from_step"] == 0 and first["worker"] == "a terminal (manage.py train)"

    class Killed(Exception):
        pass

    def killed(**_: Any) -> Any:
        raise Killed

    monkeypatch.setattr(training_services, "training_data_pack", killed)
    with pytest.raises(Killed):
        training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    run.refresh_from_db()
    assert run.environment["starts"] == [first] and run.environment["device"] == "cpu"
    monkeypatch.undo()
    training_services.training_run_execute(run=run, context=None, device_preference="cpu")
    run.refresh_from_db()
    assert [s["from_step"] for s in run.environment["starts"]] == [0, 3]
    assert run.environment["starts"][1]["checkpoint_sha256"] == run.checkpoints.get(step=3).sha256
