"""The expert API: next item, submit answer, progress. Session auth with CSRF; no truth anywhere."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import timing
from core.roles import account
from turing import selectors, services
from turing.models import Assignment


class ReadingApi(APIView):
    """A view of the reading session: never stored by a browser or proxy (`Cache-Control: no-store`), so
    that Back or Forward can never show a stale item or progress and lead to an answer not meant."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response


class ItemSerializer(serializers.Serializer):
    token = serializers.CharField()
    image_url = serializers.CharField()


class NextSerializer(serializers.Serializer):
    finished = serializers.BooleanField()
    open = serializers.BooleanField(help_text="false once the study is closed: the page turns read-only")
    item = ItemSerializer(allow_null=True)
    preload = ItemSerializer(allow_null=True)
    position = serializers.IntegerField()
    answered = serializers.IntegerField()
    total = serializers.IntegerField()
    opens_at = serializers.DateTimeField(
        allow_null=True, help_text="a second session after a washout: when it opens (no item until then)"
    )


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 5, "nullable": True})
class ConfidenceField(serializers.Field):
    """A whole number from 1 to 5, strictly: no strings, no floats, no booleans."""

    default_error_messages = {"invalid": "Confidence must be a whole number from 1 to 5, got {input!r}."}

    def to_internal_value(self, data: Any) -> int:
        if not services.confidence_valid(data):
            self.fail("invalid", input=data)
        return int(data)

    def to_representation(self, value: Any) -> Any:
        return value


class AnswerInSerializer(serializers.Serializer):
    token = serializers.CharField(
        error_messages={
            "required": "An item token is required.",
            "blank": "An item token is required.",
            "null": "An item token is required.",
            "invalid": "An item token is required.",
        },
    )
    label = serializers.ChoiceField(  # type: ignore[assignment]  # shadows Field.label
        choices=["real", "synthetic"],
        error_messages={
            "invalid_choice": "Unknown label {input!r}: use 'real' or 'synthetic'.",
            "required": "A label is required: 'real' or 'synthetic'.",
            "null": "A label is required: 'real' or 'synthetic'.",
        },
    )
    confidence = ConfidenceField(required=False, allow_null=True)
    # What the page saw while the patch was up (`analysis.timing`): optional, for the time per item.
    events = serializers.JSONField(required=False)
    elapsed_ms = serializers.IntegerField(required=False, min_value=0, max_value=10**10)
    # The place in the reader's order when they went back to an earlier answer (an item read twice has two).
    position = serializers.IntegerField(required=False, min_value=0, max_value=10**6)
    # An explicit change of the answer at `position` (the page's Back): without it, an answer for a read
    # already answered differently is refused as coming from a page out of date.
    revise = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("events" in attrs) != ("elapsed_ms" in attrs):
            raise serializers.ValidationError("events and elapsed_ms come together.")
        if "events" in attrs:
            try:
                events = timing.events_clean(attrs["events"])
            except timing.EventsError as exc:
                raise serializers.ValidationError(str(exc)) from None
            attrs["visible_ms"] = timing.visible_ms(events, attrs["elapsed_ms"])
        return attrs


def _first_error(errors: Any) -> str:
    """The serializer's first message, as the API's one `detail` string."""
    while isinstance(errors, dict | list):
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors)


def _refused(request: Request, study_id: int, detail: str, status_code: int) -> Response:
    """A refused write. Someone else's study is a 404 whatever was wrong with the request: its existence
    does not leak."""
    selectors.assignment_for_reader(study_id=study_id, user=request.user)
    return Response({"detail": detail}, status=status_code)


class AnswerOutSerializer(serializers.Serializer):
    token = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # shadows Field.label
    confidence = serializers.IntegerField(allow_null=True)
    answered_at = serializers.DateTimeField()
    saved = serializers.BooleanField()
    repeated = serializers.BooleanField()
    saved_as = serializers.CharField()
    changed_from = serializers.CharField(allow_null=True)
    next = NextSerializer()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}  # what a refused answer gets


def _item(token: str | None, route: str = "turing:item_image") -> dict[str, str] | None:
    return None if token is None else {"token": token, "image_url": reverse(route, args=[token])}


def _upcoming(upcoming: services.NextItem, is_open: bool, route: str = "turing:item_image") -> dict[str, Any]:
    return {
        "finished": upcoming.finished,
        "open": is_open,
        "item": _item(upcoming.token, route),
        "preload": _item(upcoming.preload_token, route),
        "position": upcoming.position,
        "answered": upcoming.answered,
        "total": upcoming.total,
        "opens_at": upcoming.opens_at,
    }


def next_payload(
    assignment: Assignment, answered: int | None = None, is_open: bool | None = None
) -> dict[str, Any]:
    """The reader's next item; `is_open` when the caller knows it (an answer just taken: the study was
    open), else read from the assignment's study."""
    upcoming = services.answer_next(assignment=assignment, answered=answered)
    return _upcoming(upcoming, assignment.study.is_open if is_open is None else is_open)


class NextItemApi(ReadingApi):
    @extend_schema(responses={200: NextSerializer, 404: ErrorSerializer}, summary="The reader's next item")
    def get(self, request: Request, study_id: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        return Response(next_payload(assignment))


class ReasonsApi(ReadingApi):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiTypes.OBJECT,
            **ERRORS,
        },
        summary="Why the reader called an item synthetic: {token, reasons: [...], click: [x, y] or null}",
    )
    def post(self, request: Request, study_id: int) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        try:
            answer = services.answer_reasons_set(
                study_id=study_id,
                reader=account(request.user),
                token=data.get("token"),
                reasons=data.get("reasons"),
                click=data.get("click"),
            )
        except services.AnswerError as exc:
            return _refused(request, study_id, str(exc), exc.status)
        click = None if answer.click_x is None else [answer.click_x, answer.click_y]
        return Response({"reasons": answer.reasons, "click": click})


class AnsweredItemApi(ReadingApi):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer, 409: ErrorSerializer},
        summary="One of the reader's own earlier answers, to revisit and change (where the study allows)",
    )
    def get(self, request: Request, study_id: int, position: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        if not assignment.study.allow_changes:
            return Response({"detail": "This study does not allow changes."}, status=status.HTTP_409_CONFLICT)
        earlier = selectors.answered_item(assignment=assignment, position=position)
        if earlier is None:
            return Response(
                {"detail": "No answer of yours at that position."}, status=status.HTTP_404_NOT_FOUND
            )
        return Response(
            {
                "item": _item(earlier["token"]),
                "position": position,
                "total": assignment.total,
                "label": earlier["label"],
                "confidence": earlier["confidence"],
                "open": assignment.study.is_open,
            }
        )


class AnswerSubmitApi(ReadingApi):
    @extend_schema(
        request=AnswerInSerializer,
        responses={
            201: AnswerOutSerializer,
            200: AnswerOutSerializer,
            **ERRORS,
        },
        summary="Label an item; a repeated identical submit returns the stored answer",
    )
    def post(self, request: Request, study_id: int) -> Response:
        if not isinstance(request.data, dict):
            raise ParseError("Send a JSON object with token, label and (optionally) confidence.")
        incoming = AnswerInSerializer(data=request.data)
        if not incoming.is_valid():
            return _refused(request, study_id, _first_error(incoming.errors), status.HTTP_400_BAD_REQUEST)
        data = incoming.validated_data
        try:
            result = services.answer_submit(
                study_id=study_id,
                reader=account(request.user),
                token=data["token"],
                label=data["label"],
                confidence=data.get("confidence"),
                visible_ms=data.get("visible_ms"),
                position=data.get("position"),
                revise=data["revise"],
            )
        except services.AnswerError as exc:
            return _refused(request, study_id, str(exc), exc.status)
        answer = result.answer
        assignment = answer.assignment
        body = {
            "token": result.token,
            "label": answer.label,
            "confidence": answer.confidence,
            "answered_at": answer.answered_at,
            "saved": True,
            "repeated": not result.created and result.changed_from is None,
            # What the page says was saved: "real · 3", and for a revision what it replaced.
            "saved_as": services.answer_words(answer.label, answer.confidence),
            "changed_from": None
            if result.changed_from is None
            else services.answer_words(result.changed_from["label"], result.changed_from["confidence"]),
            # A new answer at position p means p + 1 answered: no need to count them.
            "next": next_payload(
                assignment,
                answer.position + 1 if result.created else None,
                is_open=True if result.created else None,  # a new answer is taken only in an open study
            ),
        }
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class PracticeNextApi(ReadingApi):
    @extend_schema(
        responses={200: NextSerializer, 404: ErrorSerializer}, summary="The reader's next practice patch"
    )
    def get(self, request: Request, study_id: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        upcoming = services.practice_next(assignment=assignment)
        return Response(_upcoming(upcoming, assignment.study.is_open, PRACTICE_IMAGE))


PRACTICE_IMAGE = "turing:practice_image"


class PracticeAnswerApi(ReadingApi):
    @extend_schema(
        request=AnswerInSerializer,
        responses={
            200: OpenApiTypes.OBJECT,
            **ERRORS,
        },
        summary="Answer a practice patch: the response tells its truth (practice is never in a statistic)",
    )
    def post(self, request: Request, study_id: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        if not isinstance(request.data, dict):
            raise ParseError("Send a JSON object with token, label and (optionally) confidence.")
        incoming = AnswerInSerializer(data=request.data)
        if not incoming.is_valid():
            return Response({"detail": _first_error(incoming.errors)}, status=status.HTTP_400_BAD_REQUEST)
        data = incoming.validated_data
        try:
            answer = services.practice_answer_submit(
                assignment=assignment,
                token=data["token"],
                label=data["label"],
                confidence=data.get("confidence"),
            )
        except services.AnswerError as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        upcoming = services.practice_next(assignment=assignment)
        return Response(
            {
                "token": answer.item.token,
                "label": answer.label,
                "confidence": answer.confidence,
                "truth": answer.item.truth,
                "correct": answer.label == answer.item.truth,
                "next": _upcoming(upcoming, True, PRACTICE_IMAGE),
            }
        )


class ProgressSerializer(serializers.Serializer):
    answered = serializers.IntegerField()
    total = serializers.IntegerField()
    finished = serializers.BooleanField()
    open = serializers.BooleanField()


class ProgressApi(ReadingApi):
    @extend_schema(responses={200: ProgressSerializer, 404: ErrorSerializer}, summary="The reader's progress")
    def get(self, request: Request, study_id: int) -> Response:
        assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
        answered = selectors.assignment_answered_count(assignment=assignment)
        finished = answered >= assignment.total
        return Response(
            {
                "answered": answered,
                "total": assignment.total,
                "finished": finished,
                "open": assignment.study.is_open,
            }
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
