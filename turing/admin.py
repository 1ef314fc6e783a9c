from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from turing.models import Answer, Assignment, Study, StudyArm, StudyEvent, StudyItem

PROTOCOL_FIELDS = (
    "equivalence_margin",
    "alpha",
    "items_per_reader",
    "real_parts",
    "synthetic_parts",
    "seed",
    "tissue_class",
    "same_items_for_all",
    "allow_changes",
    "ask_confidence",
    "instructions",
    "real_datasets",
    "synthetic_datasets",
    "protocol_hash",
    "frozen_at",
)


class StudyArmInline(admin.TabularInline):
    """A study's arms, as built (their items were drawn from them)."""

    model = StudyArm
    fields = readonly_fields = ("name", "parts", "position", "datasets")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("name", "tissue_class", "items_per_reader", "status", "created_at")
    inlines = (StudyArmInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The protocol is frozen once the first answer has arrived (results are never edited in place)."""
        answered = (
            obj is not None and Answer.objects.filter(assignment__study=obj, label__isnull=False).exists()
        )
        return (*super().get_readonly_fields(request, obj), *(PROTOCOL_FIELDS if answered else ()))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Results and ground truth are shown, never added, edited or deleted by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StudyItem)
class StudyItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "study", "truth", "patch")
    list_filter = ("study", "truth")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("study", "reader", "invited_at", "finished_at")


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin):
    list_display = ("assignment", "position", "label", "confidence", "shown_at", "answered_at")
    list_filter = ("label",)


@admin.register(StudyEvent)
class StudyEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "study", "kind", "actor")
    list_filter = ("kind",)
