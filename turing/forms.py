from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber
from django.urls import reverse

from core.forms import IdMultipleChoiceField
from core.roles import EXPERTS_GROUP
from core.validators import DB_ID_MAX, validate_name
from gan.models import Dataset, Patch, Source
from neural.config import KNOWN_CLASSES
from turing.models import DEFAULT_REASONS, ReaderRole
from turing.selectors import pilot_candidates
from turing.services import (
    PRACTICE_MAX,
    REPEAT_SHARE_MAX,
    SINGLE_ARM,
    WASHOUT_DAYS_MAX,
    ArmSpec,
    ProtocolOptions,
    StudySpec,
    default_instructions,
)


def _experts() -> Any:
    return get_user_model().objects.filter(groups__name=EXPERTS_GROUP, is_active=True).order_by("username")


DEFAULT_ITEMS_PER_READER = 100


class PoolWidget(forms.CheckboxSelectMultiple):
    """A pool as a checkbox with what it holds (patches per class) and a few of its patches."""

    option_template_name = "turing/widgets/pool_option.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.details: dict[int, dict[str, Any]] = {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        key = getattr(value, "value", value)
        option.update(self.details.get(int(key), {}) if str(key).isdigit() else {})
        return option


class PoolField(IdMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return pool_label(obj)


def pool_label(dataset: Dataset) -> str:
    """Sampling outputs by what made them (run, step, class, count, date); imports by their name."""
    run = getattr(dataset, "sampling_run", None)
    if run is None:
        return dataset.name
    return (
        f"{run.checkpoint.run.name}, step {run.checkpoint.step:,}: {run.count:,} {run.tissue_class} "
        f"({run.created_at:%Y-%m-%d})"
    )


def _synthetic_pool(help_text: str) -> PoolField:
    return PoolField(
        queryset=Dataset.objects.filter(source=Source.SYNTHETIC)
        .select_related("sampling_run__checkpoint__run")
        .order_by("-created_at"),
        widget=PoolWidget,
        required=False,
        help_text=help_text,
    )


def _optional_number(
    kind: type[forms.IntegerField] | type[forms.FloatField],
    bounds: tuple[float, float],
    initial: float,
    label: str,
    help_text: str,
) -> forms.Field:
    """A protocol setting left empty for its default: a number from bounds[0] to bounds[1]."""
    limits: dict[str, Any] = {"min_value": bounds[0], "max_value": bounds[1]}
    return kind(required=False, initial=initial, label=label, help_text=help_text, **limits)


class StudyForm(forms.Form):
    # Not required for the preview, which works before a name is typed; creating refuses an empty one.
    name = forms.CharField(required=False, max_length=200, label="Study name", validators=[validate_name])
    tissue_class = forms.ChoiceField(choices=[(c, c) for c in KNOWN_CLASSES], initial="LYM")
    real_datasets = PoolField(
        queryset=Dataset.objects.filter(source=Source.REAL).order_by("name"),
        widget=PoolWidget,
        help_text="Where the real patches come from.",
    )
    arm1_name = forms.CharField(
        required=False,
        max_length=100,
        label="Synthetic arm name",
        help_text="The generator, say (default: 'synthetic', or 'A' with more arms). Experts never see it.",
    )
    synthetic_datasets = _synthetic_pool("Sampling runs' outputs, or imported synthetic sets.")
    items_per_reader = forms.IntegerField(
        min_value=2,
        initial=DEFAULT_ITEMS_PER_READER,
        help_text="The preview sets it to what the chosen pools fill, if they hold fewer.",
    )
    real_parts = forms.IntegerField(
        min_value=0, initial=1, label="Real parts", help_text="Ratio real : synthetic"
    )
    synthetic_parts = forms.IntegerField(min_value=0, initial=1, label="Synthetic parts (this arm)")
    arm2_name = forms.CharField(
        required=False, max_length=100, label="Second arm name", help_text="Default: 'B'."
    )
    arm2_datasets = _synthetic_pool("Another generator's synthetic sets, to compare with the first arm.")
    arm2_parts = forms.IntegerField(required=False, min_value=0, initial=1, label="Second arm parts")
    arm3_name = forms.CharField(
        required=False, max_length=100, label="Third arm name", help_text="Default: 'C'."
    )
    arm3_datasets = _synthetic_pool("A third generator's synthetic sets.")
    arm3_parts = forms.IntegerField(required=False, min_value=0, initial=1, label="Third arm parts")
    harmonise_jpeg_quality = _optional_number(
        forms.IntegerField,
        (0, 100),
        0,
        "Harmonise: JPEG quality",
        "0: off. From 50 to 100: every patch, real and synthetic, is re-encoded as JPEG at this "
        "quality before it is shown, so that compression traces cannot tell them apart (in the protocol).",
    )
    equal_transforms = forms.BooleanField(
        required=False,
        label="Show each patch turned or mirrored",
        help_text=(
            "Each patch, real and synthetic alike, is shown in one of its eight rotations and mirror "
            "images, drawn from the study's seed. Real patches from a public dataset could otherwise be "
            "looked up pixel for pixel in that dataset; tissue has no up or down, so nothing is lost."
        ),
    )
    shortcut_confirmed = forms.BooleanField(
        required=False,
        label="Build it despite a near-certain shortcut",
        help_text=(
            "Needed only when the shortcut check tells the sets apart almost surely (AUC 0.95 or more, all "
            "features together or one family alone): "
            "readers could then answer from that difference rather than from the tissue."
        ),
    )
    stain_normalisation = forms.BooleanField(
        required=False,
        label="Normalise stain colour (Reinhard)",
        help_text=(
            "Every patch, real and synthetic alike, is brought to the colour of the real pool (a mosaic of "
            "its patches drawn by the study's seed), before any JPEG harmonisation: a colour difference "
            "between the sets then cannot tell them apart. The shortcut check shows the effect."
        ),
    )
    too_fast_ms = _optional_number(
        forms.IntegerField,
        (0, 60_000),
        1000,
        "Too fast (ms)",
        "Answers after less visible time than this are flagged in the report and exports, never dropped.",
    )
    ask_reasons = forms.BooleanField(
        required=False,
        initial=False,
        label="Ask why synthetic",
        help_text="After each 'synthetic' answer (never after 'real'), a checklist of reasons and an "
        "optional click on the giveaway.",
    )
    reasons = forms.CharField(
        required=False,
        initial=", ".join(DEFAULT_REASONS),
        help_text="The checklist, separated by commas.",
    )
    show_personal_result = forms.BooleanField(
        required=False,
        initial=False,
        label="Show readers their own result",
        help_text="After the study is closed, never before: each reader's accuracy and AUC beside the "
        "group's.",
    )
    practice_items = _optional_number(
        forms.IntegerField,
        (0, PRACTICE_MAX),
        0,
        "Practice patches",
        "0: none. Shown before the blinded test, half real and half synthetic, with the truth "
        "after each answer; never in the test set or any statistic.",
    )
    practice_datasets = PoolField(
        queryset=Dataset.objects.order_by("source", "name"),
        widget=PoolWidget,
        required=False,
        label="Practice pools",
        help_text="Real and synthetic sets the practice patches come from (a test pool named here gives up "
        "the patches practice takes).",
    )
    repeat_share = _optional_number(
        forms.FloatField,
        (0, REPEAT_SHARE_MAX),
        0,
        "Repeat reads (share)",
        "0: none. This share of each reader's items is shown a second time, for within-reader "
        "agreement; only first reads enter the primary analysis.",
    )
    repeat_gap = _optional_number(
        forms.IntegerField,
        (1, 1000),
        10,
        "Repeat after at least (items)",
        "Other items between the two reads of an item, in the same sitting.",
    )
    repeat_washout_days = _optional_number(
        forms.IntegerField,
        (0, WASHOUT_DAYS_MAX),
        0,
        "Or a washout (days)",
        "0: repeats in the same sitting. Otherwise they form a second session that opens this many "
        "days after the reader's first ends.",
    )
    ask_profile = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Ask each reader's role and experience before the first patch.",
    )
    same_items_for_all = forms.BooleanField(
        required=False, initial=True, help_text="Every reader sees the same items, each in their own order."
    )
    allow_changes = forms.BooleanField(
        required=False, initial=False, help_text="Readers may change an answer."
    )
    ask_confidence = forms.BooleanField(
        required=False, initial=True, help_text="Ask for a confidence from 1 to 5."
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Empty: instructions that name the generators of the chosen synthetic sets.",
    )
    equivalence_margin = forms.FloatField(
        min_value=0.01,
        max_value=0.30,
        label="Equivalence margin (AUC)",
        help_text="'Indistinguishable' will mean the readers' mean AUC lies within 0.5 ± this margin "
        "(90% interval). Fixed once the first answer arrives.",
    )
    alpha = forms.FloatField(
        min_value=0.001, max_value=0.20, initial=0.05, help_text="Significance level of the verdict's tests."
    )
    planned_readers = forms.IntegerField(
        required=False,
        min_value=2,
        max_value=500,
        initial=4,
        label="Planned readers",
        help_text="The stopping rule: the verdict waits until this many readers have finished (at least "
        "those enrolled at the first answer). Readers added beyond it after the first answer are recorded "
        "as an amendment, and the verdict becomes exploratory. Also the sample-size estimate's readers.",
    )
    pilot = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Plan from",
        help_text="The variances the sample-size estimate starts from: the literature's planning values, "
        "or a finished study of this project (its AUC and ratio are shown with the estimate).",
    )
    readers = IdMultipleChoiceField(
        queryset=_experts(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Experts to invite now (or invite by e-mail from the study's page).",
    )
    seed = forms.IntegerField(
        required=False, min_value=0, max_value=DB_ID_MAX, help_text="Leave empty for a random seed (stored)."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["equivalence_margin"].initial = settings.DEFAULT_EQUIVALENCE_MARGIN
        pilot = self.fields["pilot"]
        assert isinstance(pilot, forms.TypedChoiceField)
        pilot.choices = [("", "planning values from the literature"), *pilot_candidates()]
        # Thumbnails of the class the form asks for (as the manager changes it, the live preview
        # brings the new ones).
        chosen = self.data.get("tissue_class") if self.is_bound else (self.initial or {}).get("tissue_class")
        if chosen not in KNOWN_CLASSES:  # not yet validated here: anything else shows the default's
            chosen = self.fields["tissue_class"].initial
        details = pool_details(tissue_class=str(chosen))
        for name in (
            "real_datasets",
            "synthetic_datasets",
            "arm2_datasets",
            "arm3_datasets",
            "practice_datasets",
        ):
            widget = self.fields[name].widget
            assert isinstance(widget, PoolWidget)
            widget.details = details

    # The page in sections: the first always open (enough for the paper's study), the others folded
    # until asked for, or open where a field needs attention or the preview advises their remedy.
    SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        (
            "basic",
            "The study",
            (
                "name",
                "tissue_class",
                "real_datasets",
                "synthetic_datasets",
                "arm1_name",
                "items_per_reader",
                "readers",
            ),
        ),
        (
            "shortcuts",
            "What readers see: remedies for a shortcut",
            ("stain_normalisation", "harmonise_jpeg_quality", "equal_transforms", "shortcut_confirmed"),
        ),
        (
            "arms",
            "Ratio and more arms",
            (
                "real_parts",
                "synthetic_parts",
                "arm2_name",
                "arm2_datasets",
                "arm2_parts",
                "arm3_name",
                "arm3_datasets",
                "arm3_parts",
            ),
        ),
        (
            "reading",
            "How readers read",
            (
                "instructions",
                "ask_confidence",
                "ask_reasons",
                "reasons",
                "ask_profile",
                "allow_changes",
                "show_personal_result",
                "too_fast_ms",
            ),
        ),
        (
            "practice",
            "Practice and repeat reads",
            (
                "practice_items",
                "practice_datasets",
                "repeat_share",
                "repeat_gap",
                "repeat_washout_days",
                "same_items_for_all",
            ),
        ),
        (
            "verdict",
            "Verdict and sample size",
            ("equivalence_margin", "alpha", "planned_readers", "pilot", "seed"),
        ),
    )

    def sections(self, *, open_all: bool = False, advise: bool = False) -> list[dict[str, Any]]:
        """The form's sections for the page: key, title, bound fields, and whether it is shown open (the
        first always; another when one of its fields has an error, when `open_all` (a copied study, whose
        settings should be seen), or the shortcut remedies when the preview `advise`s them)."""
        out = []
        for index, (key, title, names) in enumerate(self.SECTIONS):
            fields = [self[name] for name in names]
            is_open = (
                index == 0 or open_all or any(f.errors for f in fields) or (key == "shortcuts" and advise)
            )
            out.append({"key": key, "title": title, "fields": fields, "open": is_open})
        return out

    def options(self) -> ProtocolOptions:
        """Practice and repeat reads as asked for (empty fields: none)."""
        data = self.cleaned_data
        return ProtocolOptions(
            practice_items=data.get("practice_items") or 0,
            practice_datasets=list(data.get("practice_datasets") or []),
            repeat_share=data.get("repeat_share") or 0.0,
            repeat_gap=data.get("repeat_gap") or 10,
            repeat_washout_days=data.get("repeat_washout_days") or 0,
        )

    def spec(self) -> StudySpec:
        """The study as this form designs it (`turing.services.study_plan` previews it)."""
        data = self.cleaned_data
        return StudySpec(
            name=data.get("name") or "",
            tissue_class=data["tissue_class"],
            real_datasets=list(data["real_datasets"]),
            arms=self.arms(),
            items_per_reader=data["items_per_reader"],
            real_parts=data["real_parts"],
            same_items_for_all=data["same_items_for_all"],
            allow_changes=data["allow_changes"],
            ask_confidence=data["ask_confidence"],
            instructions=data["instructions"] or default_instructions(self.arms()),
            seed=data["seed"],
            equivalence_margin=data["equivalence_margin"],
            alpha=data["alpha"],
            planned_readers=data["planned_readers"] or 0,
            harmonise_jpeg_quality=data["harmonise_jpeg_quality"] or 0,
            equal_transforms=data["equal_transforms"],
            stain_normalisation=data["stain_normalisation"],
            too_fast_ms=1000 if data["too_fast_ms"] is None else data["too_fast_ms"],
            ask_profile=data["ask_profile"],
            ask_reasons=data["ask_reasons"],
            reasons=[r.strip() for r in (data["reasons"] or "").split(",") if r.strip()],
            show_personal_result=data["show_personal_result"],
            options=self.options(),
        )

    def arms(self) -> list[ArmSpec]:
        """The synthetic arms asked for: the first always, the others when they have datasets."""
        data = self.cleaned_data
        chosen = [("", "synthetic_datasets", "synthetic_parts", "arm1_name")] + [
            (letter, f"arm{k}_datasets", f"arm{k}_parts", f"arm{k}_name")
            for k, letter in ((2, "B"), (3, "C"))
            if data.get(f"arm{k}_datasets")
        ]
        several = len(chosen) > 1
        return [
            ArmSpec(
                (data.get(name_field) or "").strip() or (letter or ("A" if several else SINGLE_ARM)),
                list(data.get(datasets) or []),
                int(data[parts]) if data.get(parts) is not None else 1,
            )
            for letter, datasets, parts, name_field in chosen
        ]


YES_NO = [("yes", "Yes"), ("no", "No")]


class ReaderProfileForm(forms.Form):
    """Who the reader is, asked once before the first patch (the report's experience table)."""

    role = forms.ChoiceField(choices=ReaderRole.choices, widget=forms.RadioSelect, label="Your role")
    years = forms.IntegerField(
        min_value=0, max_value=70, label="Years in practice (as a pathologist or resident)"
    )
    gi_subspecialty = forms.ChoiceField(
        choices=YES_NO,
        widget=forms.RadioSelect,
        label="Gastrointestinal pathology is a subspecialty of yours",
    )
    seen_synthetic = forms.ChoiceField(
        choices=YES_NO,
        widget=forms.RadioSelect,
        label="You have seen synthetic (generated) histology images before",
    )


class InviteForm(forms.Form):
    emails = forms.CharField(
        required=False,
        label="E-mail addresses",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "one or many, pasted: dr.a@example.org, dr.b@example.org"}
        ),
        help_text="Each gets a link that signs them in once (an expert account is made if needed).",
    )
    readers = IdMultipleChoiceField(
        queryset=_experts(),
        required=False,
        label="Or experts who already have an account",
        help_text="Each is e-mailed a link to the study too, where their account has an address.",
    )

    def __init__(self, *args: Any, study: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["readers"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        offered = _experts()
        if study is not None:  # experts already reading this study are not offered again
            offered = offered.exclude(assignments__study=study)
            field.queryset = offered
        if not offered.exists():  # an empty list box says nothing: say why it is empty
            field.help_text = (
                "No other expert has an account yet: invite them by address above."
                if study is None or study.assignments.exists()
                else "No expert has an account yet: invite them by address above."
            )

    def clean_emails(self) -> list[str]:
        return [e for e in re.split(r"[\s,;]+", self.cleaned_data.get("emails") or "") if e]


def pool_details(thumbnails: int = 4, *, tissue_class: str = "LYM") -> dict[int, dict[str, Any]]:
    """Per dataset: its patches per class, and the image URLs of its first few patches of `tissue_class`
    (for managers: what the study would draw from)."""
    counts: dict[int, dict[str, int]] = {}
    for dataset_id, held, n in (
        Patch.objects.values_list("dataset_id", "tissue_class").annotate(n=Count("id")).order_by()
    ):
        counts.setdefault(dataset_id, {})[held] = n
    # The first few patches of every dataset in one query (the live preview renders this on each change).
    rank = Window(RowNumber(), partition_by=F("dataset_id"), order_by=F("id").asc())
    first: dict[int, list[str]] = {}
    for dataset_id, pk in (
        Patch.objects.filter(tissue_class=tissue_class)
        .annotate(rank=rank)
        .filter(rank__lte=thumbnails)
        .order_by("dataset_id", "id")
        .values_list("dataset_id", "pk")
    ):
        first.setdefault(dataset_id, []).append(reverse("gan:patch_image", args=[pk]))
    return {
        dataset_id: {
            "counts": ", ".join(f"{n:,} {c}" for c, n in sorted(per_class.items())),
            "thumbnails": first.get(dataset_id, []),
        }
        for dataset_id, per_class in counts.items()
    }
