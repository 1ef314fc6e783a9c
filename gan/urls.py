from django.urls import include, path

from gan import views

app_name = "gan"
run = [  # one training run's page and what it polls and draws
    path("", views.run_detail, name="run_detail"),
    path("status.json", views.run_status, name="run_status"),
    path("losses.svg", views.run_losses, name="run_losses"),
    path("grid.png", views.run_grid, name="run_grid"),
]
urlpatterns = [
    path("", views.dataset_list, name="dataset_list"),
    path("import/", views.dataset_import, name="dataset_import"),
    path("datasets/<id:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("patches/<id:patch_id>.png", views.patch_image, name="patch_image"),
    path("runs/<id:run_id>/", include(run)),
    path("runs/", views.run_list, name="run_list"),
    path("runs/new/", views.run_new, name="run_new"),
    path("sampling/new/", views.sampling_new, name="sampling_new"),
    path("sampling/<id:run_id>/", views.sampling_detail, name="sampling_detail"),
]
