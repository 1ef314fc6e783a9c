"""A study's design before anything is written: counts per reader from each pool, every problem named,
and the sample size it needs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import QuerySet

from analysis import planning
from gan.models import Dataset, Patch, Source, TrainingRun
from gan.selectors import dataset_class_check_lines
from turing.models import (
    Study,
)

SINGLE_ARM = "synthetic"  # the name of a study's arm when it has one


@dataclass(frozen=True)
class SampleSize:
    """The builder's sample-size estimate for the equivalence test of the mean AUC (80% power)."""

    readers_needed: int | None  # reading `items` items each
    power_with_planned: float | None  # with the planned number of readers
    planned_readers: int | None
    items: int
    margin: float
    alpha: float
    source: str


def sample_size(
    *,
    items: int,
    margin: float,
    alpha: float,
    planned_readers: int | None,
    pilot: planning.Pilot | None,
    synthetic_share: float = 0.5,
) -> SampleSize:
    """Hillis & Obuchowski's method: readers needed for the TOST of the mean AUC against 0.5 +- margin,
    assuming the synthetic patches are truly indistinguishable (AUC 0.5), from a pilot's variances
    scaled to `items` cases at the design's own share of synthetic items, or from the literature's
    planning values when no pilot is chosen."""
    if not 0 < synthetic_share < 1:
        synthetic_share = 0.5  # a design with no real or no synthetic items has no AUC to plan for
    if pilot is None:
        pilot = planning.default_pilot(cases=max(items, 4), positive_share=synthetic_share)
    else:
        pilot = pilot.with_share(synthetic_share)
    power = (
        planning.equivalence_power(pilot, planned_readers, items, margin, alpha) if planned_readers else None
    )
    return SampleSize(
        planning.readers_needed(pilot, items, margin, alpha=alpha),
        power,
        planned_readers,
        items,
        margin,
        alpha,
        pilot.source,
    )


def study_sample_size(*, study: Study, pilot: planning.Pilot | None = None) -> SampleSize:
    """The planned design's power: its planned readers (those enrolled, until the freeze fixes the
    plan) reading its items at its own ratio, under its own margin and alpha."""
    planned = study.planned_readers or study.assignments.count()
    return sample_size(
        items=study.items_per_reader,
        margin=study.equivalence_margin,
        alpha=study.alpha,
        planned_readers=planned or None,
        pilot=pilot,
        synthetic_share=study.synthetic_parts / (study.real_parts + study.synthetic_parts),
    )


@dataclass(frozen=True)
class ArmSpec:
    """A synthetic arm as a manager asks for it: a name, its synthetic datasets, its parts of the ratio."""

    name: str
    datasets: Sequence[Dataset]
    parts: int = 1


@dataclass
class ArmPlan:
    name: str
    parts: int
    n: int  # items per reader from this arm
    available: int  # patches of the study's class in the arm's datasets


@dataclass
class StudyPlan:
    """What a study would hold, computed before anything is written (the builder's preview)."""

    tissue_class: str
    items_per_reader: int
    n_real: int
    n_synthetic: int
    real_available: int
    synthetic_available: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    real_parts: int = 1
    synthetic_parts: int = 1
    arms: list[ArmPlan] = field(default_factory=list)
    patch_size: int | None = None
    practice_real: int = 0  # practice patches per study (the same for every reader)
    practice_synthetic: int = 0
    repeats: int = 0  # test items each reader reads a second time
    microns_per_pixel: float | None = None  # the real pool's resolution: readers' scale bar (None: no bar)
    # Each synthetic set's class check for the study's class: (set name, what the page says, flagged).
    class_checks: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def other_warnings(self) -> list[str]:
        """The warnings the preview shows below the class checks (a flagged check is shown once, there)."""
        shown = {_class_check_warning(name, text) for name, text, flagged in self.class_checks if flagged}
        return [w for w in self.warnings if w not in shown]

    @property
    def max_items(self) -> int:
        """The most items per reader these pools fill at this ratio (real : each arm)."""
        parts = [self.real_parts] + [a.parts for a in self.arms]
        available = [self.real_available] + [a.available for a in self.arms]
        n = sum(available)
        while n > 0:
            if all(k <= have for k, have in zip(split_items(n, parts), available, strict=True)):
                return n
            n -= 1
        return 0


def split_items(n: int, parts: Sequence[int]) -> list[int]:
    """`n` items in proportion to `parts` (real first, then each arm), summing to exactly `n`.

    The real share is rounded as a two-pool study always was; the synthetic rest goes to the arms by
    largest remainder (ties to the earlier arm), so every reader gets the same counts per arm."""
    total = sum(parts)
    if total <= 0:
        return [0] * len(parts)
    n_real = round(n * parts[0] / total)
    rest, arm_parts = n - n_real, parts[1:]
    arm_total = sum(arm_parts)
    if arm_total == 0:
        return [n_real] + [0] * len(arm_parts)
    exact = [rest * p / arm_total for p in arm_parts]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return [n_real, *counts]


def pool_patches(
    datasets: Iterable[Dataset], tissue_class: str, source: str, without: Iterable[str] = ()
) -> QuerySet[Patch]:
    """The patches of a pool; `without`: content hashes it gives up (the images of the study's practice
    patches, whatever dataset holds them: practice shows the truth, so no test item may show the same
    image)."""
    ids = [d.pk for d in datasets]
    pool = Patch.objects.filter(dataset_id__in=ids, tissue_class=tissue_class, source=source)
    without = list(without)
    return pool.exclude(content_hash__in=without) if without else pool


PRACTICE_MAX = 50


REPEAT_SHARE_MAX = 0.5


WASHOUT_DAYS_MAX = 365


@dataclass(frozen=True)
class ProtocolOptions:
    """The reading protocol's options beyond the item mix: practice and repeat reads."""

    practice_items: int = 0
    practice_datasets: Sequence[Dataset] = ()
    repeat_share: float = 0.0
    repeat_gap: int = 10
    repeat_washout_days: int = 0


NO_OPTIONS = ProtocolOptions()  # no practice, no repeat reads


def repeat_count(items: int, share: float) -> int:
    return round(items * share)


def _options_problems(options: ProtocolOptions, items_per_reader: int) -> list[str]:
    problems = []
    if not 0 <= options.practice_items <= PRACTICE_MAX:
        problems.append(f"Practice patches must be from 0 to {PRACTICE_MAX}, got {options.practice_items}.")
    elif options.practice_items and not options.practice_datasets:
        problems.append("A practice phase needs the pools its patches come from.")
    elif options.practice_items == 1:
        problems.append("A practice phase needs at least 2 patches (one real, one synthetic).")
    if not 0 <= options.repeat_share <= REPEAT_SHARE_MAX:
        problems.append(
            f"The share of repeat reads must be from 0 to {REPEAT_SHARE_MAX:g}, got {options.repeat_share:g}."
        )
        return problems
    if not 0 <= options.repeat_washout_days <= WASHOUT_DAYS_MAX:
        problems.append(f"The washout must be from 0 to {WASHOUT_DAYS_MAX} days.")
    repeats = repeat_count(items_per_reader, options.repeat_share)
    if options.repeat_share and repeats == 0:
        problems.append(
            f"A share of {options.repeat_share:g} of {items_per_reader} items repeats none: raise the share."
        )
    if repeats and not options.repeat_washout_days:
        if options.repeat_gap < 1:
            problems.append("Repeat reads need at least 1 other item between the two reads.")
        elif repeats > items_per_reader - options.repeat_gap:
            problems.append(
                f"{repeats} repeat reads with at least {options.repeat_gap} other items before each "
                f"need more than {items_per_reader} items per reader: lower the share or the gap, or use "
                "a washout."
            )
    return problems


def _practice_overlap(
    practice: Sequence[Dataset], pool: Sequence[Dataset], n: int, tissue_class: str, source: str
) -> int:
    """How many of a test pool's patches show an image the practice pools also hold (by content hash,
    in any dataset), at most the `n` that practice draws: the test draw may lose that many."""
    if not n or not practice:
        return 0
    images = pool_patches(practice, tissue_class, source).values("content_hash")
    return min(n, pool_patches(pool, tissue_class, source).filter(content_hash__in=images).count())


def _arm_problems(arms: Sequence[ArmSpec]) -> list[str]:
    problems = []
    names = [a.name.strip() for a in arms]
    if not arms:
        problems.append("A study needs at least one synthetic arm.")
    if any(not name for name in names):
        problems.append("Every synthetic arm needs a name.")
    for name in sorted({n for n in names if names.count(n) > 1 and n}):
        problems.append(f"Two arms are named {name!r}: each arm needs its own name.")
    if any(name.lower() == Source.REAL for name in names):
        problems.append("An arm cannot be named 'real'.")
    seen: dict[int, str] = {}
    for arm in arms:
        if arm.parts < 1:
            problems.append(f"Arm {arm.name!r} needs at least one part of the ratio.")
        for dataset in arm.datasets:
            if dataset.pk in seen and seen[dataset.pk] != arm.name:
                problems.append(
                    f"{dataset.name} is in arms {seen[dataset.pk]!r} and {arm.name!r}: an arm's patches "
                    "must be its own."
                )
            seen[dataset.pk] = arm.name
    return problems


def pool_resolution(real_datasets: Sequence[Dataset]) -> float | None:
    """The real pool's resolution when its datasets agree on one (else no scale bar: it would be wrong
    for some patches)."""
    values = {d.microns_per_pixel for d in real_datasets}
    return values.pop() if len(values) == 1 else None


def _size_problem(datasets: Iterable[Dataset]) -> tuple[int | None, list[str]]:
    sizes: dict[int, list[str]] = {}
    for dataset in datasets:
        sizes.setdefault(dataset.patch_size, []).append(dataset.name)
    if len(sizes) <= 1:
        return (next(iter(sizes)) if sizes else None), []
    described = "; ".join(f"{size} px: {', '.join(sorted(names))}" for size, names in sorted(sizes.items()))
    return None, [f"The pools mix patch sizes ({described}): every pool of a study must share one size."]


@dataclass(frozen=True)
class StudySpec:
    """A study as its manager designs it (the builder's form): what `study_plan` previews and
    `turing.services.study_create` builds. Every field is a study setting of the same name, but for
    `arms` (the synthetic arms, `StudyArm`) and `options` (practice and repeat reads)."""

    name: str
    real_datasets: Sequence[Dataset]
    arms: Sequence[ArmSpec]
    items_per_reader: int
    tissue_class: str = "LYM"
    real_parts: int = 1
    same_items_for_all: bool = True
    allow_changes: bool = False
    ask_confidence: bool = True
    instructions: str = ""
    seed: int | None = None  # None: a new random seed
    equivalence_margin: float = 0.10
    alpha: float = 0.05
    planned_readers: int = 0
    harmonise_jpeg_quality: int = 0
    equal_transforms: bool = False
    stain_normalisation: bool = False  # Reinhard, to the real pool's colour (`Study.stain_target`)
    too_fast_ms: int = 1000
    ask_profile: bool = True
    ask_reasons: bool = False
    reasons: Sequence[str] = ()  # empty: the default reasons
    show_personal_result: bool = False
    options: ProtocolOptions = NO_OPTIONS


def study_plan(spec: StudySpec) -> StudyPlan:
    """The preview of a study: counts per reader from the real pool and each arm, and every problem.

    Practice patches are drawn first and never enter the test set: a test pool they share gives them
    up."""
    tissue_class = spec.tissue_class.strip().upper()
    real_datasets, items_per_reader, real_parts = spec.real_datasets, spec.items_per_reader, spec.real_parts
    equivalence_margin, alpha, options = spec.equivalence_margin, spec.alpha, spec.options
    harmonise_jpeg_quality = spec.harmonise_jpeg_quality
    arms = spec.arms
    arms = [ArmSpec(a.name.strip(), list(a.datasets), a.parts) for a in arms]
    problems: list[str] = protocol_problems(equivalence_margin=equivalence_margin, alpha=alpha)
    if items_per_reader < 2:
        problems.append("A study needs at least 2 items per reader.")
    if real_parts < 0 or real_parts + sum(max(a.parts, 0) for a in arms) == 0:
        problems.append("The real:synthetic ratio needs at least one positive part.")
        real_parts = 1
    problems += _arm_problems(arms)
    low, high = JPEG_QUALITY_RANGE
    if harmonise_jpeg_quality and not low <= harmonise_jpeg_quality <= high:
        problems.append(f"The harmonising JPEG quality must be from {low} to {high} (or 0 for none).")
    parts = [real_parts] + [max(a.parts, 0) for a in arms]
    counts = split_items(items_per_reader, parts)
    problems += _options_problems(options, items_per_reader)
    practice_real, practice_synthetic = split_items(options.practice_items, [1, 1])
    practice = list(options.practice_datasets)
    for source, n in ((Source.REAL, practice_real), (Source.SYNTHETIC, practice_synthetic)):
        have = pool_patches(practice, tissue_class, source).count() if n else 0
        if practice and n > have:
            problems.append(
                f"The practice phase asks for {n} {source} {tissue_class} patches, but its pools hold {have}."
            )
    real_overlap = _practice_overlap(practice, real_datasets, practice_real, tissue_class, Source.REAL)
    real_available = pool_patches(real_datasets, tissue_class, Source.REAL).count() - real_overlap
    overlap = real_overlap
    if counts[0] > real_available:
        problems.append(
            f"The study asks for {counts[0]} real {tissue_class} items per reader, "
            f"but the real pool holds {real_available} {tissue_class} patches."
        )
    arm_plans = []
    for arm, n in zip(arms, counts[1:], strict=True):
        arm_overlap = _practice_overlap(
            practice, arm.datasets, practice_synthetic, tissue_class, Source.SYNTHETIC
        )
        overlap += arm_overlap
        available = pool_patches(arm.datasets, tissue_class, Source.SYNTHETIC).count() - arm_overlap
        arm_plans.append(ArmPlan(arm.name, arm.parts, n, available))
        if n > available:
            what, pool = (
                ("", "the synthetic pool") if len(arms) == 1 else (f" of arm {arm.name!r}", "the arm")
            )
            problems.append(
                f"The study asks for {n} synthetic {tissue_class} items{what} per reader, "
                f"but {pool} holds {available} {tissue_class} patches."
            )
    all_synthetic = [d for a in arms for d in a.datasets]
    patch_size, size_problems = _size_problem([*real_datasets, *all_synthetic, *practice])
    problems += size_problems
    warnings = _colour_leak_warnings(real_datasets, all_synthetic)
    class_checks = _class_checks(all_synthetic, tissue_class)
    warnings += [_class_check_warning(name, text) for name, text, flagged in class_checks if flagged]
    if overlap:
        warnings.append(
            f"The practice pools hold the same images as {overlap} patch{'es' if overlap != 1 else ''} of "
            "the test pools (compared by content, in any dataset): those that practice draws are left out "
            "of the test items, since practice shows each patch's truth; the counts above allow for it."
        )
    return StudyPlan(
        tissue_class,
        items_per_reader,
        counts[0],
        sum(counts[1:]),
        real_available,
        sum(a.available for a in arm_plans),
        problems,
        warnings,
        real_parts,
        sum(a.parts for a in arms),
        arm_plans,
        patch_size,
        practice_real if options.practice_items else 0,
        practice_synthetic if options.practice_items else 0,
        repeat_count(items_per_reader, options.repeat_share),
        pool_resolution(real_datasets),
        class_checks,
    )


def _class_check_warning(name: str, text: str) -> str:
    """The builder's warning for a flagged class check (one wording, found again by `other_warnings`)."""
    return f"{name}: {text} Look at its patches (its dataset page) before readers do."


def _class_checks(synthetic_datasets: Sequence[Dataset], tissue_class: str) -> list[tuple[str, str, bool]]:
    """What the class check of each synthetic set says of the study's class (gan's words for it)."""
    checks = []
    for dataset in synthetic_datasets:
        line = dataset_class_check_lines(dataset=dataset, tissue_class=tissue_class)[0]
        checks.append((dataset.name, line["text"], bool(line["flagged"])))
    return checks


MARGIN_RANGE = (0.01, 0.30)


ALPHA_RANGE = (0.001, 0.20)


def protocol_problems(*, equivalence_margin: float, alpha: float) -> list[str]:
    problems = []
    if not MARGIN_RANGE[0] <= equivalence_margin <= MARGIN_RANGE[1]:
        problems.append(
            f"The equivalence margin must be from {MARGIN_RANGE[0]} to {MARGIN_RANGE[1]} in AUC, "
            f"got {equivalence_margin:g}."
        )
    if not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
        problems.append(f"Alpha must be from {ALPHA_RANGE[0]} to {ALPHA_RANGE[1]}, got {alpha:g}.")
    return problems


def _colour_leak_warnings(
    real_datasets: Sequence[Dataset], synthetic_datasets: Sequence[Dataset]
) -> list[str]:
    """Real patches from another dataset than the GAN learnt from can differ in stain colour."""
    run_ids = {d.provenance.get("training_run") for d in synthetic_datasets} - {None}
    trained_on = set(TrainingRun.objects.filter(pk__in=run_ids).values_list("dataset_id", flat=True))
    real_ids = {d.pk for d in real_datasets}
    warnings = []
    if trained_on and real_ids - trained_on:
        names = ", ".join(sorted(d.name for d in real_datasets if d.pk not in trained_on))
        warnings.append(
            f"The real pool includes {names}, which the GAN was not trained on: stain colours may differ "
            "between datasets and tell real from synthetic."
        )
    if any(d.is_demo for d in synthetic_datasets):
        warnings.append("The synthetic pool comes from a demo-configuration model, not the paper's.")
    runs = TrainingRun.objects.in_bulk(run_ids)
    for dataset in synthetic_datasets:
        run = runs.get(dataset.provenance.get("training_run"))
        step = dataset.provenance.get("checkpoint_step", 0)
        for warning in run.health.get("warnings", []) if run is not None else []:
            if warning["step"] <= step:
                warnings.append(
                    f"{dataset.name} comes from a checkpoint whose training warned: {warning['message']}"
                )
    return warnings


JPEG_QUALITY_RANGE = (50, 100)


INSTRUCTIONS = (
    "Each patch is either a real H&E patch or one made by {generators}. Label each as real or synthetic. "
    "There is no time limit, and you can stop and come back at any time."
)


def default_instructions(arms: Sequence[ArmSpec]) -> str:
    """The readers' instructions, naming what made the synthetic patches as their sets' records name it
    (a diffusion model is not called a GAN): every arm's generators, with no arm told apart."""
    names = sorted({d.generator.get("name", "") for arm in arms for d in arm.datasets} - {""})
    if not names:
        return INSTRUCTIONS.format(generators="a generative model")
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return INSTRUCTIONS.format(generators=f"a generative model ({listed})")
