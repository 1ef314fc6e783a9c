from __future__ import annotations

from django import forms

from gan.models import Dataset, SamplingRun, Source


class FidReportForm(forms.Form):
    sampling_run = forms.ModelChoiceField(queryset=SamplingRun.objects.select_related("checkpoint__run"))
    real_dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.filter(source=Source.REAL),
        required=False,
        help_text="Default: the dataset the GAN was trained on.",
    )
    n_images = forms.IntegerField(
        required=False,
        min_value=2,
        label="Images per side",
        help_text="Default: every patch of the sampling run.",
    )
    seed = forms.IntegerField(min_value=0, initial=0)


class ClassifierForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.filter(source=Source.REAL))
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=10)
