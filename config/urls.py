from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("core.urls")),
    path("manage/gan/", include("gan.urls")),
    path("", include("turing.urls")),
    path("manage/evaluation/", include("evaluation.urls")),
    path("admin/", admin.site.urls),
]
