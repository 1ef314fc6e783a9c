from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from turing.models import Answer, Assignment, Study, StudyArm, StudyEvent, StudyItem
from turing.services import study_event_record


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
    """Studies are built by the builder (which checks them) and closed or reopened on the study page
    (which records it): here every field but the name is read-only, a study is never added, and a
    frozen one is never deleted. A rename is recorded in the audit trail."""

    list_display = ("name", "tissue_class", "items_per_reader", "status", "created_at")
    inlines = (StudyArmInline,)

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Study managers work with studies through the builder and the study page (which check and
        # record what they do); the admin's studies are the administrators'.
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        names = [f.name for f in Study._meta.get_fields() if f.concrete and f.name not in ("id", "name")]
        return (*super().get_readonly_fields(request, obj), *names)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or (
            obj.frozen_at is None and not obj.assignments.filter(answers__isnull=False).exists()
        )

    def save_model(self, request: HttpRequest, obj: Study, form: Any, change: bool) -> None:
        before = Study.objects.filter(pk=obj.pk).values_list("name", flat=True).first()
        super().save_model(request, obj, form, change)
        if before is not None and before != obj.name:
            study_event_record(
                study=obj,
                kind=StudyEvent.Kind.RENAMED,
                actor=request.user,
                before={"name": before},
                after={"name": obj.name},
            )


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
class AssignmentAdmin(ReadOnlyAdmin):
    """A reader's study, order, seed and times are part of the record: shown, never edited here."""

    list_display = ("study", "reader", "invited_at", "finished_at")


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin):
    list_display = ("assignment", "position", "label", "confidence", "shown_at", "answered_at")
    list_filter = ("label",)


@admin.register(StudyEvent)
class StudyEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "study", "kind", "actor")
    list_filter = ("kind",)
