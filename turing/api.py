"""The expert API: next item, submit answer, progress. Session auth with CSRF; no truth anywhere."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from turing import selectors, services
from turing.models import Assignment


class ItemSerializer(serializers.Serializer):
    token = serializers.CharField()
    image_url = serializers.CharField()


class NextSerializer(serializers.Serializer):
    finished = serializers.BooleanField()
    item = ItemSerializer(allow_null=True)
    preload = ItemSerializer(allow_null=True)
    position = serializers.IntegerField()
    answered = serializers.IntegerField()
    total = serializers.IntegerField()


class AnswerInSerializer(serializers.Serializer):
    token = serializers.CharField()
    label = serializers.ChoiceField(choices=["real", "synthetic"])  # type: ignore[assignment]  # shadows Field.label
    confidence = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=5)


class AnswerOutSerializer(serializers.Serializer):
    token = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # shadows Field.label
    confidence = serializers.IntegerField(allow_null=True)
    answered_at = serializers.DateTimeField()
    saved = serializers.BooleanField()
    repeated = serializers.BooleanField()
    next = NextSerializer()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _item(token: str | None) -> dict[str, str] | None:
    return (
        None if token is None else {"token": token, "image_url": reverse("turing:item_image", args=[token])}
    )


def next_payload(assignment: Assignment, answered: int | None = None) -> dict[str, Any]:
    upcoming = services.answer_next(assignment=assignment, answered=answered)
    return {
        "finished": upcoming.finished,
        "item": _item(upcoming.token),
        "preload": _item(upcoming.preload_token),
        "position": upcoming.position,
        "answered": upcoming.answered,
        "total": upcoming.total,
    }


class NextItemApi(APIView):
    @extend_schema(responses={200: NextSerializer, 404: ErrorSerializer}, summary="The reader's next item")
    def get(self, request: Request, study_id: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        return Response(next_payload(assignment))


class AnswerSubmitApi(APIView):
    @extend_schema(
        request=AnswerInSerializer,
        responses={
            201: AnswerOutSerializer,
            200: AnswerOutSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
        summary="Label an item; a repeated identical submit returns the stored answer",
    )
    def post(self, request: Request, study_id: int) -> Response:
        if not isinstance(request.data, dict):
            raise ParseError("Send a JSON object with token, label and (optionally) confidence.")
        data = request.data
        try:
            result = services.answer_submit(
                study_id=study_id,
                reader=request.user,
                token=data.get("token"),
                label=data.get("label"),
                confidence=data.get("confidence"),
            )
        except services.AnswerError as exc:
            # Someone else's study is a 404 whatever was wrong with the answer: its existence does not leak.
            selectors.assignment_for_reader(study_id=study_id, user=request.user)
            return Response({"detail": str(exc)}, status=exc.status)
        answer = result.answer
        assignment = answer.assignment
        body = {
            "token": result.token,
            "label": answer.label,
            "confidence": answer.confidence,
            "answered_at": answer.answered_at,
            "saved": True,
            "repeated": not result.created,
            # A new answer at position p means p + 1 answered: no need to count them.
            "next": next_payload(assignment, answer.position + 1 if result.created else None),
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class ProgressSerializer(serializers.Serializer):
    answered = serializers.IntegerField()
    total = serializers.IntegerField()
    finished = serializers.BooleanField()


class ProgressApi(APIView):
    @extend_schema(responses={200: ProgressSerializer, 404: ErrorSerializer}, summary="The reader's progress")
    def get(self, request: Request, study_id: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        answered = selectors.assignment_answered_count(assignment=assignment)
        return Response(
            {"answered": answered, "total": assignment.total, "finished": answered >= assignment.total}
        )


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    studies = serializers.IntegerField(help_text="studies the user is invited to read")


class MeApi(APIView):
    """The signed-in user: for scripts, and the answer benchmark's baseline (one query past the session)."""

    @extend_schema(responses={200: MeSerializer}, summary="The signed-in user")
    def get(self, request: Request) -> Response:
        count = selectors.reader_study_count(user_id=request.user.pk)
        return Response({"username": request.user.get_username(), "studies": count})
