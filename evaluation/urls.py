from django.urls import path

from evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("", views.report_list, name="report_list"),
]
