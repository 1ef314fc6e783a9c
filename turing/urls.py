from django.urls import include, path

from turing import api, views

app_name = "turing"
reading = [  # an expert's studies and the pages of one
    path("", views.my_studies, name="my_studies"),
    path("<id:study_id>/", views.study_read, name="study_read"),
    path("<id:study_id>/done/", views.study_done, name="study_done"),
    path("<id:study_id>/profile/", views.study_profile, name="study_profile"),
    path("<id:study_id>/practice/", views.study_practice, name="study_practice"),
]
reading_api = [  # what the reading page asks while an expert reads a study
    path("next", api.NextItemApi.as_view(), name="api_next"),
    path("answers", api.AnswerSubmitApi.as_view(), name="api_answer"),
    path("answers/<int:position>", api.AnsweredItemApi.as_view(), name="api_answered"),
    path("reasons", api.ReasonsApi.as_view(), name="api_reasons"),
    path("progress", api.ProgressApi.as_view(), name="api_progress"),
    path("practice/next", api.PracticeNextApi.as_view(), name="api_practice_next"),
    path("practice/answers", api.PracticeAnswerApi.as_view(), name="api_practice_answer"),
]
managing = [  # a study manager's pages of one study
    path("", views.study_detail, name="study_detail"),
    path("status", views.study_status, name="study_status"),
    path("status.json", views.study_live_status, name="study_live_status"),
    path("invite", views.study_invite, name="study_invite"),
    path("remind", views.study_remind, name="study_remind"),
    path("readers/<id:assignment_id>/remove", views.reader_remove, name="reader_remove"),
]
urlpatterns = [
    path("api/me", api.MeApi.as_view(), name="api_me"),
    path("api/studies/<id:study_id>/", include(reading_api)),
    path("studies/", include(reading)),
    path("i/<str:token>", views.item_image, name="item_image"),
    path("p/<str:token>", views.practice_image, name="practice_image"),
    path("invitations/<str:secret>", views.invitation_accept, name="invitation_accept"),
    path("accounts/password/set/", views.password_set, name="password_set"),
    path("manage/studies/", views.study_list, name="study_list"),
    path("manage/studies/new/", views.study_new, name="study_new"),
    path("manage/studies/<id:study_id>/", include(managing)),
    path(
        "manage/invitations/<id:invitation_id>/<str:action>",
        views.invitation_manage,
        name="invitation_manage",
    ),
]
