"""Writes of the gan app: dataset imports, training runs, sampling runs."""

from gan.services.checkpoints import RunError
from gan.services.datasets import (
    GENERATOR_KINDS,
    DatasetImportError,
    Generator,
    ImportAborted,
    ImportReport,
    dataset_import,
    dataset_import_job,
    dataset_import_start,
    dataset_import_upload,
    generator_describe,
    import_path_resolve,
)
from gan.services.sampling import sampling_run_job, sampling_run_start
from gan.services.training import (
    config_build,
    training_data_pack,
    training_run_job,
    training_run_start,
)

__all__ = [
    "GENERATOR_KINDS",
    "DatasetImportError",
    "Generator",
    "ImportAborted",
    "ImportReport",
    "RunError",
    "config_build",
    "dataset_import",
    "dataset_import_job",
    "dataset_import_start",
    "dataset_import_upload",
    "generator_describe",
    "import_path_resolve",
    "sampling_run_job",
    "sampling_run_start",
    "training_data_pack",
    "training_run_job",
    "training_run_start",
]
