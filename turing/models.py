from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models

from gan.models import Patch, Source


def new_token() -> str:
    """An opaque, unguessable id for an item's image URL: never a key, file name or hash.

    Never starting with '-' so that exports need not quote it against spreadsheet formulas.
    """
    while (token := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return token


def new_seed() -> int:
    return secrets.randbits(62)


DEFAULT_REASONS = (
    "nuclei",
    "chromatin",
    "cell arrangement",
    "stroma/background",
    "colour",
    "artefact",
    "other",
)


def default_reasons() -> list[str]:
    return list(DEFAULT_REASONS)


class Study(models.Model):
    """A blinded visual Turing test: a mix of real and synthetic patches shown to invited experts."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    name = models.CharField(max_length=200)
    tissue_class = models.CharField(max_length=8, default="LYM")
    instructions = models.TextField(blank=True)
    items_per_reader = models.PositiveIntegerField()
    real_parts = models.PositiveSmallIntegerField(default=1)  # the real:synthetic ratio
    synthetic_parts = models.PositiveSmallIntegerField(default=1)  # the sum of the arms' parts
    same_items_for_all = models.BooleanField(default=True, help_text="Agreement statistics need it.")
    # Every pool of a study shares one patch size (`turing.services.study_plan`); the page fits it.
    patch_size = models.PositiveSmallIntegerField(default=128)
    # Its real pool's resolution, for the scale bar (NULL: unknown, no bar); one value for every item.
    microns_per_pixel = models.FloatField(null=True, blank=True)
    # The final pipeline every item passes, real or synthetic alike (`gan.imaging.harmonised`): 0, none;
    # otherwise the JPEG quality every patch is re-encoded at before it is shown.
    harmonise_jpeg_quality = models.PositiveSmallIntegerField(default=0)
    # Before that, each item shown in one of the square's eight symmetries (`gan.imaging.symmetry`),
    # drawn alike for every item from the seed (`turing.services.items.item_transform`): a real patch
    # from a public dataset is then no longer found by looking its pixels up in that dataset.
    equal_transforms = models.BooleanField(default=False)
    # Reinhard stain normalisation of every item alike (`gan.imaging.stain_normalised`), to this target:
    # the L, a, b means and spreads of a mosaic of the real pool's patches drawn by the seed, fitted at
    # creation (`turing.services.items.stain_target_of`). Empty: none.
    stain_target = models.JSONField(default=list, blank=True)
    # Answers given after less visible time than this are flagged "too fast" (kept, never dropped).
    too_fast_ms = models.PositiveIntegerField(default=1000)
    # A short form about the reader before their first patch (role, years, GI subspecialty, synthetic
    # images seen before): stored with their assignment, in the exports, and the report's experience table.
    ask_profile = models.BooleanField(default=True)
    # "Why synthetic?": after each "synthetic" answer (never after "real"), a checklist of these reasons
    # and an optional click on the giveaway.
    ask_reasons = models.BooleanField(default=False)
    # After the study is closed (never before), each reader may see their own accuracy and AUC beside the
    # group's on their end page.
    show_personal_result = models.BooleanField(default=False)
    reasons = models.JSONField(default=default_reasons, blank=True)
    # A practice phase before the blinded test: this many patches from `practice_datasets` (never in the
    # test set), the truth shown after each answer, excluded from every statistic (`PracticeItem`).
    practice_items = models.PositiveSmallIntegerField(default=0)
    practice_datasets = models.ManyToManyField("gan.Dataset", related_name="+", blank=True)
    # Repeat reads for within-reader agreement: this share of each reader's test items is shown a second
    # time, after at least `repeat_gap` other items in the same sitting, or, with `repeat_washout_days`,
    # in a second session opened that many days after the first ends. Only first reads enter the
    # primary analysis (`Answer.read`).
    repeat_share = models.FloatField(default=0.0)
    repeat_gap = models.PositiveSmallIntegerField(default=10)
    repeat_washout_days = models.PositiveSmallIntegerField(default=0)
    # `analysis.shortcuts.shortcut_check` on the study's items as shown (see `ShortcutResult`).
    shortcut_check = models.JSONField(default=dict, blank=True)
    allow_changes = models.BooleanField(default=False)
    ask_confidence = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The verdict's rule, fixed when the study is built and frozen once its first answer arrives
    # (`turing.services.study_protocol_set`): a server setting changed later cannot rewrite a conclusion.
    equivalence_margin = models.FloatField(
        default=0.10, help_text="delta: 'indistinguishable' means the mean AUC is within 0.5 +- delta"
    )
    alpha = models.FloatField(default=0.05, help_text="significance level of the verdict's tests")
    # The stopping rule: the verdict waits until this many readers have finished, and readers enrolled
    # beyond it after the first answer are a recorded amendment that makes the verdict exploratory.
    # 0 until the freeze means "the readers enrolled when the first answer arrives" (`study_freeze`).
    planned_readers = models.PositiveSmallIntegerField(
        default=0, help_text="readers the verdict waits for (0: those enrolled at the first answer)"
    )
    # Set when the first answer arrives: a SHA-256 of the settings, the seed and every item's truth and
    # patch content hash (`turing.services.study_protocol`). Shown on the report and in every export.
    protocol_hash = models.CharField(max_length=64, blank=True)
    protocol = models.JSONField(default=dict, blank=True)  # what the hash was computed from, at the freeze
    frozen_at = models.DateTimeField(null=True, blank=True)
    # Draws the item set; each reader's order comes from the reader's own stored seed.
    seed = models.BigIntegerField(default=new_seed)
    real_datasets = models.ManyToManyField("gan.Dataset", related_name="+", blank=True)
    # Every arm's datasets together (each arm's own are on `StudyArm`).
    synthetic_datasets = models.ManyToManyField("gan.Dataset", related_name="+", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class StudyArm(models.Model):
    """One synthetic arm of a study: a named set of synthetic datasets (one generator, typically) and its
    share of each reader's items. A study compares its arms against one shared real pool. Experts never
    see an arm: only study managers and the report do."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=100)
    parts = models.PositiveSmallIntegerField(default=1)
    position = models.PositiveSmallIntegerField(default=0)
    datasets = models.ManyToManyField("gan.Dataset", related_name="+")

    class Meta:
        ordering = ["study", "position"]
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="study_arm_unique_name")]

    def __str__(self) -> str:
        return f"arm {self.name} of {self.study_id}"


class StudyEvent(models.Model):
    """One change to a study or to an answer, kept for good: who, when, what it was before and after.

    Rows are only ever added (`turing.services.study_event_record`); nothing updates or deletes them,
    and the admin shows them read-only.
    """

    class Kind(models.TextChoices):
        CREATED = "created"
        PROTOCOL = "protocol"
        STATUS = "status"
        READER_ADDED = "reader added"
        READER_REMOVED = "reader removed"  # an enrolment with no answer, with its unused invitation
        FROZEN = "frozen"
        ANSWER_CHANGED = "answer changed"
        AMENDMENT = "amendment"  # a reader enrolled beyond the planned readers after the freeze
        REASONS_CHANGED = "reasons changed"  # a reader's "why synthetic" given again, differently
        PROFILE_CHANGED = "profile changed"  # a reader's profile given again before their first answer
        RENAMED = "renamed"  # the one field the admin may change
        REMINDED = "reminded"  # a reader who had not finished was sent their link again

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.study_id} at {self.at}"


class Invitation(models.Model):
    """An e-mailed link that signs an expert in once and opens a study. Only a hash of the link's secret
    is stored; re-sending makes a new secret, so an older link stops working."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    secret_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    times_sent = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["study", "email"]
        constraints = [models.UniqueConstraint(fields=["study", "email"], name="invitation_unique_email")]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.study_id}"

    def state(self, now: Any) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= now else "waiting"


class StudyItem(models.Model):
    """One patch in a study, reached by experts only through its opaque token."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    patch = models.ForeignKey(Patch, on_delete=models.PROTECT, related_name="+")
    truth = models.CharField(max_length=20, choices=Source.choices)
    # The synthetic arm a synthetic item was drawn for (None for real items).
    arm = models.ForeignKey(StudyArm, null=True, blank=True, on_delete=models.PROTECT, related_name="items")
    token = models.CharField(max_length=32, unique=True, default=new_token)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"item {self.pk} of {self.study_id}"


class StudyItemImage(models.Model):
    """The bytes an expert receives for an item, made once when the item is drawn.

    Serving them is a read of a fixed-size value and nothing else: no decoding or encoding on the
    request path, so the time an image takes cannot depend on its content (a stored real patch
    compresses worse than a flat synthetic one, and decoding it took measurably longer). Every
    value has the same length (`gan.imaging.encode_png_blinded`); on PostgreSQL the column is stored
    uncompressed (migration 0002) so that TOAST does not compress flat patches into fewer pages.
    """

    item = models.OneToOneField(StudyItem, on_delete=models.CASCADE, primary_key=True, related_name="image")
    png = models.BinaryField()

    def __str__(self) -> str:
        return f"image of {self.item_id}"


class ImageFetch(models.Model):
    """How often a reader fetched one item's image in the current window (the per-item rate limit)."""

    assignment = models.ForeignKey("Assignment", on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(StudyItem, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "item"], name="image_fetch_unique_reader_item")
        ]

    def __str__(self) -> str:
        return f"{self.count} fetches of {self.item_id} by {self.assignment_id}"


class ReaderRole(models.TextChoices):
    PATHOLOGIST = "pathologist"
    RESIDENT = "resident"
    OTHER = "other"


class Assignment(models.Model):
    """A reader's place in a study: their items in their own order, drawn from a stored seed."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    seed = models.BigIntegerField(default=new_seed)
    # The tokens of this reader's items, in the order they see them (the tokens, not the ids, so that
    # serving an item needs no look-up); rebuilt from `seed` and checked by `assignment_order_audit`.
    order = models.JSONField(default=list)
    # The tokens of this reader's practice items in the order they see them (`Study.practice_items`).
    practice_order = models.JSONField(default=list, blank=True)
    invited_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A reader a manager removed (`turing.services.reader_remove`, recorded): their answers are kept and
    # exported, left out of every statistic, and their session answers nothing more.
    removed_at = models.DateTimeField(null=True, blank=True)
    # The reader's profile for this study (`Study.ask_profile`), given before their first patch.
    profile_role = models.CharField(max_length=20, choices=ReaderRole.choices, blank=True)
    profile_years = models.PositiveSmallIntegerField(null=True, blank=True)
    profile_gi = models.BooleanField(null=True, blank=True)
    profile_seen_synthetic = models.BooleanField(null=True, blank=True)
    profile_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "reader"], name="assignment_unique_reader")]

    def __str__(self) -> str:
        return f"{self.reader} in {self.study}"

    @property
    def total(self) -> int:
        return len(self.order)

    @property
    def first_reads(self) -> int:
        """How many distinct items the reader has (their order also holds the repeat reads)."""
        return len(set(self.order))


class Answer(models.Model):
    """One reader's label for one item. The row is created when the item is first shown."""

    class Label(models.TextChoices):
        REAL = "real"
        SYNTHETIC = "synthetic"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(StudyItem, on_delete=models.PROTECT, related_name="answers")
    position = models.PositiveIntegerField()  # 0-based place in the reader's order
    # 1 for the first read of an item, 2 for its repeat (`Study.repeat_share`): only first reads enter
    # the primary analysis; pairs of reads give the within-reader agreement.
    read = models.PositiveSmallIntegerField(default=1)
    # NULL until answered: the row exists from the moment the item is first shown (shown_at).
    label = models.CharField(max_length=20, choices=Label.choices, null=True, blank=True)  # noqa: DJ001
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    shown_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    # The time the patch was visible, focused and not idle before the first answer, as the page measured
    # it (`analysis.timing`); NULL when the page sent no events (an API client, an older page).
    visible_ms = models.PositiveIntegerField(null=True, blank=True)
    # Why the reader called it synthetic (`Study.ask_reasons`), and where the giveaway was: x and y as
    # shares of the patch's width and height from its top-left corner.
    reasons = models.JSONField(null=True, blank=True)  # NULL: none given (rows are made when shown)
    click_x = models.FloatField(null=True, blank=True)
    click_y = models.FloatField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["assignment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "item", "read"], name="answer_unique_per_read"),
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True) | models.Q(confidence__gte=1, confidence__lte=5),
                name="answer_confidence_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} item {self.item_id}: {self.label}"


class PracticeItem(models.Model):
    """A practice patch (`Study.practice_items`): shown before the blinded test with its truth after the
    reader's answer. Its own table, so that no statistic, export or agreement ever reads it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="practice")
    patch = models.ForeignKey(Patch, on_delete=models.PROTECT, related_name="+")
    truth = models.CharField(max_length=20, choices=Source.choices)
    token = models.CharField(max_length=32, unique=True, default=new_token)
    # Blinded bytes made once, like `StudyItemImage` (the truth is only told after the answer).
    png = models.BinaryField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"practice item {self.pk} of {self.study_id}"


class PracticeAnswer(models.Model):
    """A reader's answer to a practice patch: kept to show progress, never in a statistic."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="practice_answers")
    item = models.ForeignKey(PracticeItem, on_delete=models.CASCADE, related_name="answers")
    label = models.CharField(max_length=20, choices=Answer.Label.choices)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    answered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assignment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "item"], name="practice_answer_unique_per_item")
        ]

    def __str__(self) -> str:
        return f"{self.assignment} practice {self.item_id}: {self.label}"


class RecordEntry(models.Model):
    """One link of a study's tamper-evident record (`turing.services.record`): the content of one write
    (an event, an answer's state after it was taken, changed or given reasons, a reader's profile) and
    the hash of that content chained to the entry before it. A study keeps one chain of its own (its
    events) and one per reader (their answers), so that readers never wait for one another.

    Rows are only ever added. An edit of an answer, an event or an entry, even by SQL, shows as a
    difference `verify_study` names: the chain's hashes are recomputed from the contents (which anyone
    holding the study's archive can do, `analysis.chain`), each entry's seal is a keyed hash only the
    server can make, and each answer and event row must equal its latest entry."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="record")
    chain = models.CharField(max_length=24)  # "study", or "reader <assignment id>"
    seq = models.PositiveIntegerField()  # 0-based place in its chain
    kind = models.CharField(max_length=20)  # "event", "answer", "profile"
    content = models.JSONField()
    prev = models.CharField(max_length=64)  # the hash of the entry before (64 zeros for the first)
    hash = models.CharField(max_length=64)
    seal = models.CharField(max_length=64)  # HMAC of `hash` under a key derived from SECRET_KEY
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "chain", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["study", "chain", "seq"], name="record_entry_unique_place")
        ]

    def __str__(self) -> str:
        return f"{self.chain} #{self.seq} of {self.study_id}"


class RepeatRead(models.Model):
    """A repeat read's own token (`Study.repeat_share`): the second read of an item has its own image URL
    and is answered by its own token, so a page can never take one read for the other, and once the
    repeat has been shown the first read's URL and answer are closed. `Assignment.order` keeps the item
    tokens (the order drawn from the seed); this maps the repeat's place in it to the token served."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="repeat_reads")
    item = models.ForeignKey(StudyItem, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()  # the repeat's place in the reader's order
    token = models.CharField(max_length=32, unique=True, default=new_token)

    class Meta:
        ordering = ["assignment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "position"], name="repeat_read_unique_position")
        ]

    def __str__(self) -> str:
        return f"repeat read {self.position} of {self.assignment_id}"
