from django.urls import include, path

from evaluation import views

app_name = "evaluation"
augmentation = [  # the experiments and what each one draws and exports
    path("", views.augmentation_list, name="augmentation_list"),
    path("<id:experiment_id>/", views.augmentation_detail, name="augmentation_detail"),
    path("<id:experiment_id>/recall.svg", views.augmentation_chart, name="augmentation_chart"),
    path("<id:experiment_id>/results.csv", views.augmentation_csv, name="augmentation_csv"),
]
study = [  # one study's report, its figures and its exports
    path("", views.study_report, name="study_report"),
    path("fig5.svg", views.study_fig5, name="study_fig5"),
    path("fool-rates.svg", views.study_fool_rates, name="study_fool_rates"),
    path("arms/<id:arm_id>/", views.study_arm_gallery, name="study_arm_gallery"),
    path("archive.zip", views.study_archive, name="study_archive"),
    path("<str:kind>.csv", views.StudyExportApi.as_view(), name="study_export"),
]
urlpatterns = [
    path("", views.report_list, name="report_list"),
    path("classifiers/new/", views.classifier_new, name="classifier_new"),
    path("studies/<id:study_id>/", include(study)),
    path("fid/new/", views.fid_report_new, name="fid_report_new"),
    path("fid/<id:report_id>/", views.fid_report, name="fid_report"),
    path("augmentation/", include(augmentation)),
    path("copying/", views.copying_list, name="copying_list"),
    path("copying/<id:check_id>/", views.copying_check, name="copying_check"),
]
