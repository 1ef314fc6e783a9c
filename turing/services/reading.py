"""Serving items to a reader and taking their answers, reasons and practice answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from turing.models import (
    Answer,
    Assignment,
    ImageFetch,
    PracticeAnswer,
    PracticeItem,
    RepeatRead,
    Study,
    StudyEvent,
    StudyItem,
)
from turing.selectors import assignment_answered_count, served_tokens
from turing.services.errors import AnswerError
from turing.services.record import (
    answer_record,
    answer_state_record,
    stored_datetime,
    study_event_record,
    study_freeze,
)


def image_fetch_count(*, assignment_id: int, item_id: int) -> int:
    """Count one fetch of an item's image by a reader; returns the count in the current window.

    One statement whatever the item (an upsert that starts a new window when the old one is over), so
    the count costs every item the same.
    """
    table, qn = ImageFetch._meta.db_table, connection.ops.quote_name
    now = timezone.now()
    window_over = now - timedelta(seconds=settings.ITEM_IMAGE_FETCH_WINDOW_S)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (assignment_id, item_id, window_start, {qn('count')}) "  # noqa: S608
            "VALUES (%s, %s, %s, 1) ON CONFLICT (assignment_id, item_id) DO UPDATE SET "
            f"{qn('count')} = CASE WHEN {table}.window_start < %s THEN 1 "
            f"ELSE {table}.{qn('count')} + 1 END, "
            f"window_start = CASE WHEN {table}.window_start < %s THEN %s ELSE {table}.window_start END "
            f"RETURNING {qn('count')}",
            [assignment_id, item_id, now, window_over, window_over, now],
        )
        row = cursor.fetchone()
    return int(row[0])


@dataclass(frozen=True)
class NextItem:
    """What the expert page needs: no truth, no patch id, only the item's opaque token."""

    token: str | None
    position: int  # 0-based; equals `answered` (answers fill the order from the start)
    total: int
    answered: int
    preload_token: str | None
    # A second session after a washout that has not opened yet: when it opens (no token until then).
    opens_at: Any = None

    @property
    def finished(self) -> bool:
        return self.token is None and self.opens_at is None


def _record_shown(*, assignment_id: int, token: str, position: int, read: int) -> None:
    """Create the item's answer row with its first-shown time; a second serve changes nothing.

    One statement, no transaction around it (bulk_create would add BEGIN/COMMIT): this runs on
    every answer. ON CONFLICT DO NOTHING is understood by PostgreSQL and SQLite alike.
    """
    table, read_column = Answer._meta.db_table, connection.ops.quote_name("read")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (assignment_id, item_id, position, {read_column}, shown_at) "  # noqa: S608
            f"SELECT %s, id, %s, %s, %s FROM {StudyItem._meta.db_table} WHERE token = %s "
            f"ON CONFLICT (assignment_id, item_id, {read_column}) DO NOTHING",
            [assignment_id, position, read, timezone.now(), token],
        )


def second_session_wait(*, assignment: Assignment, answered: int) -> Any:
    """When the reader's second session (repeat reads after a washout) opens, while they wait for it: at
    the end of their first session, until the washout after their last first read is over; else None."""
    if answered != assignment.first_reads or answered >= assignment.total:
        return None  # mid-session, finished, or a study without repeat reads
    days = assignment.study.repeat_washout_days
    last = (
        Answer.objects.filter(assignment=assignment, position=answered - 1)
        .values_list("answered_at", flat=True)
        .first()
        if days
        else None
    )
    opens = None if last is None else last + timedelta(days=days)
    return opens if opens is not None and timezone.now() < opens else None


def answer_next(*, assignment: Assignment, answered: int | None = None) -> NextItem:
    """The reader's first unanswered item, recording when it was first shown.

    Answers fill a reader's order from the start (only the first unanswered item is ever served),
    so the next position is the number answered; a caller that knows it passes it in. A repeat read is
    the item's read 2; a second session waits for its washout (`second_session_wait`).
    """
    if answered is None:
        answered = assignment_answered_count(assignment=assignment)
    total = assignment.total
    if answered >= total:
        return NextItem(None, total, total, answered, None)
    opens = second_session_wait(assignment=assignment, answered=answered)
    if opens is not None:
        return NextItem(None, answered, total, answered, None, opens_at=opens)
    order = assignment.order
    token = order[answered]
    read = 1 + order[:answered].count(token)
    _record_shown(assignment_id=assignment.pk, token=token, position=answered, read=read)
    served = served_tokens(assignment=assignment)  # a repeat read is served by its own token
    following = served[answered + 1] if answered + 1 < total else None
    return NextItem(served[answered], answered, total, answered, following)


@dataclass(frozen=True)
class SubmitResult:
    answer: Answer  # with its assignment (order included); its item is not loaded
    token: str
    created: bool  # False: the stored answer of an earlier identical submit, or a revision
    changed_from: dict[str, Any] | None = None  # a revision: the label and confidence it replaced


_ANSWER_TAKE_SETS = ("label", "confidence", "answered_at", "visible_ms")  # what a first answer writes


def _answer_take_sql(with_confidence: bool) -> str:
    """One statement that finds the reader's shown, unanswered item in an open study and labels it.

    The hot path of the expert API: it replaces a look-up plus an update (two round trips and two ORM
    compilations) by one round trip. It returns what the response needs, the reader's order included
    (a scalar subquery: SQLite's RETURNING may not name a joined table). PostgreSQL and SQLite (3.35+)
    both run it. When it takes nothing, `answer_submit` finds out why on the explanatory path.
    """
    qn = connection.ops.quote_name
    answer, assignment = qn(Answer._meta.db_table), qn(Assignment._meta.db_table)
    study, item = qn(Study._meta.db_table), qn(StudyItem._meta.db_table)
    repeat = qn(RepeatRead._meta.db_table)
    # The token names a first read (an item's token) or a repeat read (its own token, `RepeatRead`):
    # an item's token never answers its repeat, so a stale page cannot label the read on screen.
    which_read = (
        f"AND ((i.token = %s AND a.{qn('read')} = 1) OR a.position = ("  # noqa: S608
        f"SELECT r.position FROM {repeat} r WHERE r.token = %s AND r.assignment_id = g.id)) "
    )
    confidence_allowed = f"AND s.{qn('ask_confidence')} " if with_confidence else ""
    sets = ", ".join(f"{qn(column)} = %s" for column in _ANSWER_TAKE_SETS)
    return (
        f"UPDATE {answer} SET {sets} "  # noqa: S608
        f"WHERE label IS NULL AND id = ("
        f"SELECT a.id FROM {answer} a JOIN {assignment} g ON g.id = a.assignment_id "
        f"JOIN {study} s ON s.id = g.study_id JOIN {item} i ON i.id = a.item_id "
        f"WHERE a.label IS NULL AND g.study_id = %s AND g.reader_id = %s AND s.status = %s "
        f"AND g.{qn('removed_at')} IS NULL {which_read}"
        f"{confidence_allowed}) "
        f"RETURNING id, assignment_id, item_id, position, "
        f"(SELECT g.{qn('order')} FROM {assignment} g WHERE g.id = assignment_id), shown_at, {qn('read')}, "
        f"(SELECT t.token FROM {item} t WHERE t.id = item_id)"
    )


def confidence_valid(value: Any) -> bool:
    """A confidence is a whole number from 1 to 5 (not a string, a float or a boolean)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5


def _answer_take(
    *, study_id: int, reader_id: int, token: str, label: str, confidence: int | None, visible_ms: int | None
) -> Answer | None:
    """Label a shown, unanswered item of an open study in one statement; None when that is not the case."""
    taken = dict(zip(_ANSWER_TAKE_SETS, (label, confidence, timezone.now(), visible_ms), strict=True))
    with transaction.atomic():  # the answer and its record entry are stored together, or neither
        with connection.cursor() as cursor:
            cursor.execute(
                _answer_take_sql(confidence is not None),
                [*taken.values(), study_id, reader_id, Study.Status.OPEN.value, token, token],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        answer_id, assignment_id, item_id, position, order, shown_at, read, item_token = row
        # The answer's record entry from what the statement returned: no second read of the row.
        state = {"id": answer_id, "assignment_id": assignment_id, "item__token": item_token}
        state |= {"position": position, "read": read, "shown_at": stored_datetime(shown_at), **taken}
        state |= {"changed_at": None, "reasons": None, "click_x": None, "click_y": None}
        answer_state_record(study_id=study_id, row=state)
    assignment = Assignment(
        id=assignment_id,
        study_id=study_id,
        reader_id=reader_id,
        order=json.loads(order) if isinstance(order, str) else order,  # jsonb comes back as text
    )
    answer = Answer(id=answer_id, assignment=assignment, item_id=item_id, position=position, **taken)
    if position + 1 >= assignment.total:
        Assignment.objects.filter(pk=assignment_id, finished_at__isnull=True).update(
            finished_at=answer.answered_at
        )
    return answer


def answer_submit(
    *,
    study_id: int,
    reader: User,
    token: str,
    label: str,
    confidence: int | None = None,
    visible_ms: int | None = None,
    position: int | None = None,
    revise: bool = False,
) -> SubmitResult:
    """Store a reader's label for an item they were shown; committed before this returns. `visible_ms`:
    the time the page measured (`analysis.timing`), kept with the first answer only. `position`: the place
    in the reader's order an answer is for (an item read twice has two).

    An answer is taken as meant: one for a read already answered differently is refused (409, naming
    what is stored), since it comes from a page that is out of date (Back, Forward, a second tab),
    unless it is an explicit revision (`revise`, with its `position`: the page's Back), which the study
    must allow and the audit trail records.

    Its shape (a token, a label of `Answer.Label`, a confidence from 1 to 5) is the caller's to check
    (the API's serializer does); this checks its state. A first answer takes one statement
    (`_answer_take`); anything else (a repeat, a change, an item not shown, a closed study) goes through
    the checks below, which say what is wrong.
    """
    if revise and position is None:
        raise AnswerError("A revision names the position of the answer it changes.")
    if position is None:
        taken = _answer_take(
            study_id=study_id,
            reader_id=reader.pk,
            token=token,
            label=label,
            confidence=confidence,
            visible_ms=visible_ms,
        )
        if taken is not None:
            if taken.position == 0:  # a reader's first answer: the study may have had none before
                study_freeze(study_id=study_id)
            return SubmitResult(taken, token, created=True)
    answers = _read_named(study_id=study_id, reader_id=reader.pk, token=token)
    if position is not None:
        answers = answers.filter(position=position)
    answer = answers.first()
    if answer is None:
        raise AnswerError("No such item among the items you were shown.", 404)
    assignment, study = answer.assignment, answer.assignment.study
    _refuse_if_removed(assignment)
    if not study.is_open:
        raise AnswerError("This study is closed: answers are no longer taken.", 409)
    if confidence is not None and not study.ask_confidence:
        raise AnswerError("This study does not ask for a confidence rating.")
    now = timezone.now()
    with transaction.atomic():
        updated = Answer.objects.filter(pk=answer.pk, label__isnull=True).update(
            label=label, confidence=confidence, answered_at=now, visible_ms=visible_ms
        )
        if updated:
            answer_record(study_id=study.pk, answer_id=answer.pk)
    if updated:  # only when the item or study changed since the statement above
        answer.label, answer.confidence, answer.answered_at = label, confidence, now
        if answer.position + 1 >= assignment.total:
            Assignment.objects.filter(pk=assignment.pk, finished_at__isnull=True).update(finished_at=now)
        if answer.position == 0:
            study_freeze(study_id=study.pk)
        return SubmitResult(answer, token, created=True)
    answer.refresh_from_db(fields=["label", "confidence", "answered_at", "changed_at"])
    if answer.label == label and answer.confidence == confidence:
        return SubmitResult(answer, token, created=False)  # a repeated submit: nothing new is stored
    if not study.allow_changes:
        raise AnswerError("This item is already answered, and this study does not allow changes.", 409)
    if answer.read == 1 and _repeat_shown(answer):
        raise AnswerError(
            f"Patch {answer.position + 1} has since been shown again as a repeat read: its first answer is "
            "final, so that the two reads stay independent.",
            409,
        )
    stored = answer_words(answer.label, answer.confidence)
    if not revise:
        raise AnswerError(
            f"Patch {answer.position + 1} is already answered ({stored}): this page was out of date, so "
            "nothing was changed. To change that answer, go back to it.",
            409,
        )
    with transaction.atomic():
        before = {"label": answer.label, "confidence": answer.confidence}
        Answer.objects.filter(pk=answer.pk).update(label=label, confidence=confidence, changed_at=now)
        answer_record(study_id=study.pk, answer_id=answer.pk)
        study_event_record(
            study=study,
            kind=StudyEvent.Kind.ANSWER_CHANGED,
            actor=reader,
            before={"item": token, "position": answer.position, "read": answer.read, **before},
            after={"item": token, "position": answer.position, "label": label, "confidence": confidence},
        )
    answer.refresh_from_db(fields=["label", "confidence", "answered_at", "changed_at"])
    return SubmitResult(answer, token, created=False, changed_from=before)


def _read_named(*, study_id: int, reader_id: int, token: str) -> QuerySet[Answer]:
    """The reader's answer row of the read a token names: an item's token names its first read, a
    repeat's own token (`RepeatRead`) its repeat."""
    answers = Answer.objects.select_related("assignment__study").filter(
        assignment__study_id=study_id, assignment__reader_id=reader_id
    )
    repeat = (
        RepeatRead.objects.filter(token=token, assignment__study_id=study_id, assignment__reader_id=reader_id)
        .values_list("position", flat=True)
        .first()
    )
    if repeat is not None:
        return answers.filter(position=repeat)
    return answers.filter(item__token=token, read=1)


def _repeat_shown(answer: Answer) -> bool:
    """Whether the repeat of a first read has been shown (its row exists from the moment it is)."""
    return Answer.objects.filter(assignment_id=answer.assignment_id, item_id=answer.item_id, read=2).exists()


def _refuse_if_removed(assignment: Assignment) -> None:
    """A removed reader's session takes nothing more (`reader_remove`)."""
    if assignment.removed_at is not None:
        raise AnswerError("You are no longer a reader of this study: nothing more is taken.", 404)


def answer_words(label: str | None, confidence: int | None) -> str:
    """An answer as the reading page shows it: "real · 3", or "real" without a confidence."""
    return f"{label} · {confidence}" if confidence is not None else str(label)


def answer_reasons_set(*, study_id: int, reader: User, token: Any, reasons: Any, click: Any = None) -> Answer:
    """Why the reader called an item synthetic: reasons from the study's list, and an optional click
    (x, y as shares of the patch, from its top-left). Only for the reader's own "synthetic" answers."""
    if not isinstance(token, str) or not token:
        raise AnswerError("An item token is required.")
    answer = _read_named(study_id=study_id, reader_id=reader.pk, token=token).first()
    if answer is None:
        raise AnswerError("No such item among the items you were shown.", 404)
    study = answer.assignment.study
    _refuse_if_removed(answer.assignment)
    if not study.ask_reasons:
        raise AnswerError("This study does not ask why.", 409)
    if not study.is_open:
        raise AnswerError("This study is closed: its answers and reasons are final.", 409)
    given = bool(answer.reasons) or answer.click_x is not None
    if answer.assignment.finished_at is not None:
        last = Answer.objects.filter(assignment=answer.assignment).order_by(
            F("answered_at").desc(nulls_last=True)
        )
        if given or last.values_list("pk", flat=True).first() != answer.pk:
            # The last answer finishes the reading; its reasons come just after, once.
            raise AnswerError("You have finished this study: your answers and reasons are final.", 409)
    if answer.label != Answer.Label.SYNTHETIC:
        raise AnswerError("Reasons go with an answer of 'synthetic' only.", 409)
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise AnswerError("Reasons must be a list of the study's reasons.")
    unknown = [r for r in reasons if r not in study.reasons]
    if unknown:
        raise AnswerError(f"Unknown reason(s) {', '.join(map(repr, unknown))}: use the study's list.")
    x = y = None
    if click is not None:
        if not (
            isinstance(click, list)
            and len(click) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in click)
        ):
            raise AnswerError("A click is [x, y], each from 0 to 1 of the patch.")
        x, y = float(click[0]), float(click[1])
    before = {"reasons": answer.reasons, "click": [answer.click_x, answer.click_y]}
    answer.reasons = list(dict.fromkeys(reasons))
    answer.click_x, answer.click_y = x, y
    after = {"reasons": answer.reasons, "click": [x, y]}
    with transaction.atomic():
        answer.save(update_fields=["reasons", "click_x", "click_y"])
        answer_record(study_id=study.pk, answer_id=answer.pk)
        if given and after != before:
            study_event_record(
                study=study,
                kind=StudyEvent.Kind.REASONS_CHANGED,
                actor=reader,
                before=before | {"token": token, "read": answer.read},
                after=after,
            )
    return answer


def practice_next(*, assignment: Assignment) -> NextItem:
    """The reader's next practice patch (`Study.practice_items`); finished once all are answered."""
    order = assignment.practice_order
    answered = PracticeAnswer.objects.filter(assignment=assignment).count()
    if answered >= len(order):
        return NextItem(None, len(order), len(order), answered, None)
    following = order[answered + 1] if answered + 1 < len(order) else None
    return NextItem(order[answered], answered, len(order), answered, following)


def practice_answer_submit(
    *, assignment: Assignment, token: Any, label: Any, confidence: Any = None
) -> PracticeAnswer:
    """Take a practice answer (for the patch on screen) and return it with its item, whose truth the page
    then shows. Practice answers are never part of a statistic; a repeated submit returns the first."""
    if not isinstance(token, str) or token not in assignment.practice_order:
        raise AnswerError("No such practice patch among yours.", 404)
    study = assignment.study
    if not study.is_open:
        raise AnswerError("This study is closed: answers are no longer taken.", 409)
    if label not in Answer.Label.values:
        raise AnswerError(f"Unknown label {label!r}: use 'real' or 'synthetic'.")
    if confidence is not None and not (study.ask_confidence and confidence_valid(confidence)):
        raise AnswerError("Confidence must be a whole number from 1 to 5, in a study that asks for one.")
    item = PracticeItem.objects.get(study=study, token=token)
    existing = PracticeAnswer.objects.filter(assignment=assignment, item=item).select_related("item").first()
    if existing is not None:
        return existing
    if practice_next(assignment=assignment).token != token:
        raise AnswerError("Answer the practice patches in their order.", 409)
    answer, _ = PracticeAnswer.objects.get_or_create(
        assignment=assignment, item=item, defaults={"label": label, "confidence": confidence}
    )
    return answer
