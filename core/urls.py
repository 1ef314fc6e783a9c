from django.contrib.auth import views as auth_views
from django.urls import include, path

from core import views

job = [
    path("", views.job_detail, name="job_detail"),
    path("status.json", views.job_status, name="job_status"),
    path("cancel", views.job_cancel, name="job_cancel"),
]
accounts = [
    path("login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("manage/jobs/<uuid:job_id>/", include(job)),
    path("accounts/", include(accounts)),
]
