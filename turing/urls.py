from django.urls import path

from turing import views

app_name = "turing"
urlpatterns = [
    path("studies/", views.my_studies, name="my_studies"),
]
