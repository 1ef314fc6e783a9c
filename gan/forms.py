from __future__ import annotations

from typing import Any

from django import forms

from gan.sources import DEFAULT_CLASSES, KNOWN_CLASSES


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

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("archive")) == bool((data.get("server_path") or "").strip()):
            raise forms.ValidationError("Give either a .zip to upload or a path on the server, not both.")
        archive = data.get("archive")
        if archive is not None and not archive.name.lower().endswith(".zip"):
            self.add_error("archive", "Upload a .zip archive.")
        return data
