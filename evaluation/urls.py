from django.urls import path

from evaluation import views

app_name = "evaluation"
urlpatterns = [
    path("", views.report_list, name="report_list"),
    path("fid/new/", views.fid_report_new, name="fid_report_new"),
    path("classifiers/new/", views.classifier_new, name="classifier_new"),
    path("augmentation/", views.augmentation_list, name="augmentation_list"),
    path("augmentation/<id:experiment_id>/", views.augmentation_detail, name="augmentation_detail"),
    path("augmentation/<id:experiment_id>/recall.svg", views.augmentation_chart, name="augmentation_chart"),
    path("augmentation/<id:experiment_id>/results.csv", views.augmentation_csv, name="augmentation_csv"),
    path("fid/<id:report_id>/", views.fid_report, name="fid_report"),
    path("copying/", views.copying_list, name="copying_list"),
    path("copying/<id:check_id>/", views.copying_check, name="copying_check"),
    path("studies/<id:study_id>/", views.study_report, name="study_report"),
    path("studies/<id:study_id>/fig5.svg", views.study_fig5, name="study_fig5"),
    path("studies/<id:study_id>/fool-rates.svg", views.study_fool_rates, name="study_fool_rates"),
    path("studies/<id:study_id>/arms/<id:arm_id>/", views.study_arm_gallery, name="study_arm_gallery"),
    path("studies/<id:study_id>/<str:kind>.csv", views.StudyExportApi.as_view(), name="study_export"),
]
