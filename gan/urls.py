from django.urls import path

from gan import views

app_name = "gan"
urlpatterns = [
    path("", views.dataset_list, name="dataset_list"),
    path("import/", views.dataset_import, name="dataset_import"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("patches/<int:patch_id>.png", views.patch_image, name="patch_image"),
]
