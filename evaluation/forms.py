from __future__ import annotations

from django import forms

from gan.forms import dataset_field, sampling_run_field
from gan.models import Source


class FidReportForm(forms.Form):
    sampling_run = sampling_run_field()
    real_dataset = dataset_field(Source.REAL, required=False, help_text="Default: the GAN's training set.")
    n_images = forms.IntegerField(
        required=False,
        min_value=2,
        label="Images per side",
        help_text="Default: every patch of the sampling run.",
    )
    seed = forms.IntegerField(min_value=0, initial=0)


class ClassifierForm(forms.Form):
    dataset = dataset_field(Source.REAL)
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=10)


class AugmentationForm(forms.Form):
    train_dataset = dataset_field(Source.REAL)
    test_dataset = dataset_field(
        Source.REAL,
        help_text="From other slides than the training set.",
    )
    sampling_run = sampling_run_field()
    tissue_class = forms.CharField(max_length=8, initial="LYM")
    amounts = forms.CharField(
        initial="0,100,500,1000", help_text="Synthetic patches of the class to add, per arm."
    )
    fraction = forms.FloatField(
        initial=0.25, min_value=0.001, max_value=1, help_text="Share of real patches of the class kept."
    )
    seeds = forms.CharField(initial="0,1,2")
    epochs = forms.IntegerField(initial=5, min_value=1, max_value=200)

    def _ints(self, name: str) -> list[int]:
        try:
            return [int(v) for v in self.cleaned_data[name].split(",") if v.strip()]
        except ValueError:
            raise forms.ValidationError(f"{name}: comma-separated whole numbers, please") from None

    def clean_amounts(self) -> list[int]:
        return self._ints("amounts")

    def clean_seeds(self) -> list[int]:
        return self._ints("seeds")


class CopyingCheckForm(forms.Form):
    synthetic_dataset = dataset_field(Source.SYNTHETIC)
    reference_dataset = dataset_field(
        Source.REAL,
        required=False,
        label="Training patches",
        help_text="Default, for patches sampled here: the dataset their GAN was trained on.",
    )
