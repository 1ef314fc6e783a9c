"""The site's routes: each app's own, the start page, the API schema and the admin."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from evaluation.views import StudyExportApi
from portal import views

urlpatterns = [
    path("", include("core.urls")),
    path("manage/", views.dashboard, name="dashboard"),
    path("manage/gan/", include("gan.urls")),
    path("", include("turing.urls")),
    path("manage/evaluation/", include("evaluation.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path(
        "api/manage/studies/<id:study_id>/export/<str:kind>.csv",
        StudyExportApi.as_view(),
        name="api_study_export",
    ),
    path("admin/", admin.site.urls),
]

handler500 = "core.errors.server_error"
