from django.contrib.auth import views as auth_views
from django.urls import path

from core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("manage/jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("manage/jobs/<uuid:job_id>/status.json", views.job_status, name="job_status"),
    path("manage/jobs/<uuid:job_id>/cancel", views.job_cancel, name="job_cancel"),
    path("accounts/login/", views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]
