from django.contrib import admin

from gan.models import Dataset, Patch


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "is_demo", "created_at")


@admin.register(Patch)
class PatchAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "tissue_class", "source", "content_hash")
    list_filter = ("source", "tissue_class", "dataset")
    search_fields = ("content_hash", "original_name")
