from django.contrib import admin

from turing.models import Answer, Assignment, Study, StudyItem


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("name", "tissue_class", "items_per_reader", "status", "created_at")


@admin.register(StudyItem)
class StudyItemAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "truth", "patch")
    list_filter = ("study", "truth")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("study", "reader", "invited_at", "finished_at")


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ("assignment", "position", "label", "confidence", "shown_at", "answered_at")
    list_filter = ("label",)
