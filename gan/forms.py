from __future__ import annotations

import json
from typing import Any

from django import forms

from core.forms import IdChoiceField
from gan.imaging import PATCH_SIZE, SIZE_RANGE
from gan.models import Checkpoint, Dataset, SamplingRun, Source
from gan.services.datasets import GENERATOR_KINDS, DatasetImportError, generator_describe
from gan.sources import PAPER_SYNTHETIC_COUNT
from neural.config import DEFAULT_CLASSES, KNOWN_CLASSES

SIZE_HELP = (
    f"Patch size in px: {PATCH_SIZE}, the paper's, unless your generator makes another. One per study."
)
SYNTHETIC_HELP = "Made by a generator outside histoturing: describe it below."


def dataset_field(source: str, **options: Any) -> IdChoiceField:
    """A choice of one dataset of `source` (real or synthetic patches)."""
    return IdChoiceField(queryset=Dataset.objects.filter(source=source), **options)


def sampling_run_field(**options: Any) -> IdChoiceField:
    return IdChoiceField(queryset=SamplingRun.objects.select_related("checkpoint__run"), **options)


class DatasetImportForm(forms.Form):
    archive = forms.FileField(
        required=False,
        label="Upload a .zip",
        help_text="Laid out like NCT-CRC-HE-100K: one folder per class.",
    )
    server_path = forms.CharField(
        required=False,
        label="Or a folder or .zip on the server",
        help_text="Relative to the import folder, for datasets too large to upload.",
    )
    name = forms.CharField(required=False, max_length=200, help_text="Default: the folder or zip name.")
    classes = forms.MultipleChoiceField(
        choices=[(c, c) for c in KNOWN_CLASSES],
        initial=list(DEFAULT_CLASSES),
        widget=forms.CheckboxSelectMultiple,
        help_text="BACK (background) is left out by default, as in the paper.",
    )
    size = forms.IntegerField(
        required=False, min_value=SIZE_RANGE[0], max_value=SIZE_RANGE[1], help_text=SIZE_HELP
    )
    native_size = forms.BooleanField(
        required=False,
        label="Keep the images' own size",
        help_text="Instead of a patch size: the size of the images themselves (a 200 px set stays 200 px).",
    )
    microns_per_pixel = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=99,
        label="Resolution of the source images (µm per pixel)",
        help_text=(
            "NCT-CRC-HE-100K: 0.5 µm/px at 224 px. With it, readers get a scale bar that stays true after "
            "resampling; without it, none (a bar would be a guess)."
        ),
    )
    synthetic = forms.BooleanField(
        required=False, label="These images are synthetic", help_text=SYNTHETIC_HELP
    )
    generator = forms.CharField(required=False, max_length=200, label="Generator name")
    generator_kind = forms.ChoiceField(
        required=False, choices=[(k, k) for k in GENERATOR_KINDS], initial="other", label="Generator kind"
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Model, training data, version."
    )
    sampling = forms.CharField(
        required=False,
        label="Sampling settings (JSON)",
        help_text='For example {"truncation": 0.7, "steps": 50}.',
    )
    origin = forms.CharField(required=False, max_length=500, help_text="Where the images came from.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("archive")) == bool((data.get("server_path") or "").strip()):
            raise forms.ValidationError("Give either a .zip to upload or a path on the server, not both.")
        archive = data.get("archive")
        if archive is not None and not archive.name.lower().endswith(".zip"):
            self.add_error("archive", "Upload a .zip archive.")
        if data.get("native_size") and data.get("size"):
            self.add_error("native_size", "Give a patch size or keep the images' own size, not both.")
        data["size"] = None if data.get("native_size") else (data.get("size") or PATCH_SIZE)
        data["generator_record"] = None
        if data.get("synthetic"):
            try:
                data["generator_record"] = generator_describe(
                    name=data.get("generator") or "",
                    kind=data.get("generator_kind") or "other",
                    description=data.get("description") or "",
                    sampling=data.get("sampling") or "",
                    origin=data.get("origin") or "",
                )
            except DatasetImportError as exc:
                raise forms.ValidationError(str(exc)) from None
        elif data.get("generator"):
            self.add_error("synthetic", "A generator name describes a synthetic set: tick this box.")
        return data


class TrainingRunForm(forms.Form):
    dataset = dataset_field(Source.REAL, help_text="A real dataset holding every chosen class.")
    classes = forms.MultipleChoiceField(
        choices=[(c, c) for c in KNOWN_CLASSES],
        initial=list(DEFAULT_CLASSES),
        widget=forms.CheckboxSelectMultiple,
        help_text="The paper trains on every class but BACK.",
    )
    steps = forms.IntegerField(min_value=1, initial=20_000, help_text="Training steps (batches).")
    demo = forms.BooleanField(
        required=False,
        label="CPU demo configuration",
        help_text="A texture GAN for small sets and CPUs (the demo's: 5,000 steps on the demo LYM patches, "
        "about 5 minutes on 2 cores). Not the paper's model.",
    )
    overrides = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "label_smoothing = 0.1\naugmentations = hflip,vflip"}
        ),
        help_text="Other config fields, one `name = value` per line (seed, lr_g, d_label_mode, ...).",
    )
    sample_class = forms.ChoiceField(
        required=False, choices=[("", "—")] + [(c, c) for c in KNOWN_CLASSES], label="Then sample class"
    )
    sample_count = forms.IntegerField(
        required=False, min_value=1, initial=PAPER_SYNTHETIC_COUNT, label="Then sample count"
    )

    def clean_overrides(self) -> dict[str, Any]:
        return parse_overrides(self.cleaned_data.get("overrides") or "")


def parse_overrides(text: str) -> dict[str, Any]:
    """`name = value` lines to a dict; values are JSON where they parse (numbers, true/false), else text."""
    overrides: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise forms.ValidationError(f"line {number}: expected `name = value`, got {line!r}")
        value = value.strip()
        try:
            overrides[name.strip()] = json.loads(value)
        except ValueError:
            overrides[name.strip()] = value
        except RecursionError:
            raise forms.ValidationError(f"line {number}: the value is nested too deeply to be read") from None
    return overrides


class SamplingRunForm(forms.Form):
    checkpoint = IdChoiceField(queryset=Checkpoint.objects.select_related("run"))
    tissue_class = forms.ChoiceField(choices=[(c, c) for c in KNOWN_CLASSES], initial="LYM")
    count = forms.IntegerField(
        min_value=1,
        initial=PAPER_SYNTHETIC_COUNT,
        help_text=f"The paper generated {PAPER_SYNTHETIC_COUNT:,} LYM patches.",
    )
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Image i gets seed + i.")
