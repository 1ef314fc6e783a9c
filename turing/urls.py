from django.urls import path

from turing import api, views

app_name = "turing"
urlpatterns = [
    path("studies/", views.my_studies, name="my_studies"),
    path("studies/<id:study_id>/", views.study_read, name="study_read"),
    path("studies/<id:study_id>/done/", views.study_done, name="study_done"),
    path("studies/<id:study_id>/profile/", views.study_profile, name="study_profile"),
    path("studies/<id:study_id>/practice/", views.study_practice, name="study_practice"),
    path("i/<str:token>", views.item_image, name="item_image"),
    path("p/<str:token>", views.practice_image, name="practice_image"),
    path("api/me", api.MeApi.as_view(), name="api_me"),
    path("api/studies/<id:study_id>/next", api.NextItemApi.as_view(), name="api_next"),
    path("api/studies/<id:study_id>/answers", api.AnswerSubmitApi.as_view(), name="api_answer"),
    path("api/studies/<id:study_id>/reasons", api.ReasonsApi.as_view(), name="api_reasons"),
    path(
        "api/studies/<id:study_id>/answers/<int:position>", api.AnsweredItemApi.as_view(), name="api_answered"
    ),
    path("api/studies/<id:study_id>/progress", api.ProgressApi.as_view(), name="api_progress"),
    path("api/studies/<id:study_id>/practice/next", api.PracticeNextApi.as_view(), name="api_practice_next"),
    path(
        "api/studies/<id:study_id>/practice/answers",
        api.PracticeAnswerApi.as_view(),
        name="api_practice_answer",
    ),
    path("manage/studies/", views.study_list, name="study_list"),
    path("manage/studies/new/", views.study_new, name="study_new"),
    path("manage/studies/<id:study_id>/", views.study_detail, name="study_detail"),
    path("manage/studies/<id:study_id>/status.json", views.study_live_status, name="study_live_status"),
    path("manage/studies/<id:study_id>/invite", views.study_invite, name="study_invite"),
    path(
        "manage/invitations/<id:invitation_id>/<str:action>",
        views.invitation_manage,
        name="invitation_manage",
    ),
    path("invitations/<str:secret>", views.invitation_accept, name="invitation_accept"),
    path("accounts/password/set/", views.password_set, name="password_set"),
    path("manage/studies/<id:study_id>/status", views.study_status, name="study_status"),
]
