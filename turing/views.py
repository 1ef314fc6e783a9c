from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from analysis import mrmc
from core.roles import study_manager_required
from core.validators import fits_an_id
from turing import selectors, services
from turing.forms import DEFAULT_ITEMS_PER_READER, InviteForm, ReaderProfileForm, StudyForm
from turing.models import Invitation, Study

# --- Experts ------------------------------------------------------------------------------------


@never_cache
@login_required
@require_GET
def my_studies(request: HttpRequest) -> HttpResponse:
    """An expert's landing page: the studies they are invited to, with their progress."""
    request.session.modified = True  # renews the session: no time limit between sittings
    return render(
        request, "turing/my_studies.html", {"rows": selectors.studies_for_reader(user=request.user)}
    )


@never_cache
@login_required
@require_GET
def study_read(request: HttpRequest, study_id: int) -> HttpResponse:
    assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
    request.session.modified = True  # renews the session: no time limit between sittings
    answered = selectors.assignment_answered_count(assignment=assignment)
    waiting = services.second_session_wait(assignment=assignment, answered=answered)
    if answered >= assignment.total or waiting is not None:
        return redirect("turing:study_done", study_id=study_id)
    if assignment.study.ask_profile and assignment.profile_at is None and answered == 0:
        return redirect("turing:study_profile", study_id=study_id)
    practice = answered == 0 and selectors.practice_pending(assignment=assignment)
    context = {
        "study": assignment.study,
        "assignment": assignment,
        "answered": answered,
        "practice": practice,
    }
    if answered == 0 and "start" not in request.GET:
        # The instructions in full, with how long it will take, before the first patch.
        patches = assignment.total + len(assignment.practice_order)
        minutes = max(1, round(patches * TYPICAL_SECONDS_PER_ITEM / 60))
        return render(request, "turing/intro.html", context | {"minutes": minutes})
    if practice:
        return redirect("turing:study_practice", study_id=study_id)
    return render(request, "turing/read.html", context | {"test_begins": bool(assignment.practice_order)})


# The up-front time estimate: a working assumption of a reader's time per patch (the report shows the
# times readers really took, and a later version can take them from finished studies).
TYPICAL_SECONDS_PER_ITEM = 8


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def study_profile(request: HttpRequest, study_id: int) -> HttpResponse:
    """The reader's short profile, before their first patch."""
    assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
    previous = selectors.reader_previous_profile(assignment=assignment) if request.method == "GET" else None
    initial = (
        {
            "role": previous.profile_role,
            "years": previous.profile_years,
            "gi_subspecialty": "yes" if previous.profile_gi else "no",
            "seen_synthetic": "yes" if previous.profile_seen_synthetic else "no",
        }
        if previous is not None
        else None
    )
    form = ReaderProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.assignment_profile_set(
                assignment=assignment,
                role=data["role"],
                years=data["years"],
                gi_subspecialty=data["gi_subspecialty"] == "yes",
                seen_synthetic=data["seen_synthetic"] == "yes",
            )
        except services.StudyError as exc:
            messages.error(request, str(exc))
        return redirect("turing:study_read", study_id=study_id)
    context = {"study": assignment.study, "form": form, "previous": previous}
    return render(request, "turing/profile.html", context)


@never_cache
@login_required
@require_GET
def study_practice(request: HttpRequest, study_id: int) -> HttpResponse:
    """The practice phase: the reading page on practice patches, the truth after each answer; once they
    are all answered, the page that says the blinded test begins."""
    assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
    answered, right = selectors.practice_score(assignment=assignment)
    context = {"study": assignment.study, "assignment": assignment, "practice": True}
    if answered >= len(assignment.practice_order):
        return render(request, "turing/practice_over.html", context | {"answered": answered, "right": right})
    return render(request, "turing/read.html", context | {"answered": 0})


@never_cache
@login_required
@require_GET
def study_done(request: HttpRequest, study_id: int) -> HttpResponse:
    assignment = selectors.assignment_for_reader(study_id=study_id, user=request.user)
    answered = selectors.assignment_answered_count(assignment=assignment)
    context = {
        "study": assignment.study,
        "answered": answered,
        "total": assignment.total,
        "remaining": assignment.total - answered,
        "second_session": services.second_session_wait(assignment=assignment, answered=answered),
    }
    return render(
        request, "turing/done.html", context | {"personal": selectors.personal_result(assignment=assignment)}
    )


@login_required
@require_GET
def item_image(request: HttpRequest, token: str) -> HttpResponse:
    """An item's image: its stored blinded bytes, with the same headers and the same work for every item.

    A reader may fetch one item only so often (`ITEM_IMAGE_FETCH_LIMIT` a window); past that every
    item alike answers 429, so repeated fetches cannot be used to time items against each other.
    """
    item = selectors.item_for_reader(token=token, user=request.user)
    fetches = services.image_fetch_count(assignment_id=item.assignment_id, item_id=item.item_id)
    if fetches > settings.ITEM_IMAGE_FETCH_LIMIT:
        response = HttpResponse(IMAGE_FETCH_REFUSED, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(settings.ITEM_IMAGE_FETCH_WINDOW_S)
        return response
    response = HttpResponse(selectors.item_image_bytes(item_id=item.item_id), content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_GET
def practice_image(request: HttpRequest, token: str) -> HttpResponse:
    """A practice patch's image (its own route: practice is not the blinded test, but it is shown blinded
    until answered all the same)."""
    response = HttpResponse(
        selectors.practice_image_bytes(token=token, user=request.user), content_type="image/png"
    )
    response["Cache-Control"] = "private, max-age=86400"
    return response


IMAGE_FETCH_REFUSED = "This image was fetched too often; reload the page later."


# --- Study managers -------------------------------------------------------------------------------


@study_manager_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "turing/study_list.html", {"studies": selectors.studies_overview()})


@study_manager_required
@require_http_methods(["GET", "POST"])
def study_new(request: HttpRequest) -> HttpResponse:
    """The study builder; `?copy=<id>` fills it from an existing study (the next round, or other
    settings: a study is copied into a new one, never edited once frozen)."""
    source = request.GET.get("copy", "")
    initial = selectors.study_copy_initial(study_id=int(source)) if fits_an_id(source) else None
    form = StudyForm(request.POST or None, initial=initial)
    preview = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        preview = services.study_preview(
            spec=form.spec(),
            # An untouched default count the chosen pools cannot fill becomes the most they fill (said
            # on the page), before anything is created.
            fit="create" not in request.POST and data["items_per_reader"] == DEFAULT_ITEMS_PER_READER,
            pilot=selectors.planning_pilot(study_id=data["pilot"]),
        )
        if preview.fitted is not None:
            changed = request.POST.copy()
            changed["items_per_reader"] = str(preview.fitted)
            form = StudyForm(changed, initial=initial)
            form.is_valid()
        severe = bool(preview.shortcut and preview.shortcut.get("severe"))
        if "create" in request.POST and severe and not data["shortcut_confirmed"]:
            form.add_error(
                "shortcut_confirmed",
                "The shortcut check tells these sets apart almost surely (see below): change the pools or "
                "the pipeline as it advises, or confirm that this study should be built all the same.",
            )
        elif "create" in request.POST and preview.plan.ok:  # otherwise the preview says what is wrong
            try:
                study = services.study_create(
                    spec=preview.spec, readers=list(data["readers"]), created_by=request.user
                )
            except services.StudyError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("turing:study_detail", study_id=study.pk)
    return render(
        request,
        "turing/study_new.html",
        {
            "form": form,
            "plan": preview.plan if preview else None,
            "planning": preview.planning if preview else None,
            "copied": initial,
            "fitted": preview.fitted if preview else None,
            "shortcut": preview.shortcut if preview else None,
            "min_readers": mrmc.MIN_EQUIVALENCE_READERS,
            "sections": form.sections(
                open_all=initial is not None and request.method == "GET",
                advise=bool(preview and preview.shortcut and preview.shortcut.get("warning")),
            ),
        },
    )


@study_manager_required
@require_GET
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    return _study_page(request, get_object_or_404(Study, pk=study_id))


def _study_page(request: HttpRequest, study: Study, invite_form: InviteForm | None = None) -> HttpResponse:
    """The study page; `invite_form`: the invitation form as posted, with what was refused beside it."""
    return render(
        request,
        "turing/study_detail.html",
        {
            "study": study,
            "counts": selectors.study_counts(study=study),
            "progress": selectors.study_progress(study=study),
            "invite_form": invite_form or InviteForm(study=study),
            "shortcut": services.study_shortcut_check(study=study),
            "invitations": selectors.study_invitations(study=study),
            "planning": services.study_sample_size(study=study),
        },
        status=400 if invite_form is not None else 200,
    )


@never_cache
@study_manager_required
@require_GET
def study_live_status(request: HttpRequest, study_id: int) -> JsonResponse:
    """What the study page polls to show each reader's progress without a reload."""
    study = get_object_or_404(Study, pk=study_id)
    return JsonResponse(selectors.study_live_status(study=study))


@study_manager_required
@require_POST
def study_invite(request: HttpRequest, study_id: int) -> HttpResponse:
    """Invite by e-mail (a link that signs in once) and/or existing experts, who are e-mailed their link
    too where their account has an address; says what it did, once. Addresses refused stay in the box,
    each with its reason beside it."""
    study = get_object_or_404(Study, pk=study_id)
    form = InviteForm(request.POST, study=study)
    if not form.is_valid():
        return _study_page(request, study, form)
    chosen = list(form.cleaned_data["readers"])
    with_address = [r for r in chosen if r.email]
    try:
        report = services.invitations_send(
            study=study,
            emails=[*form.cleaned_data["emails"], *(r.email for r in with_address)],
            created_by=request.user,
            site_url=_site_url(request),
        )
        for reader in chosen:
            if not reader.email:
                services.study_invite(study=study, reader=reader, actor=request.user)
    except services.StudyError as exc:
        messages.error(request, str(exc))
        return redirect("turing:study_detail", study_id=study.pk)
    lines = report.lines(refused=False) + [
        f"Invited {r.get_username()}: no e-mail was sent, since the account has no address (tell them)."
        for r in chosen
        if not r.email
    ]
    for line in lines:
        messages.info(request, line)
    if report.refused:
        kept = InviteForm({"emails": "\n".join(report.refused_addresses)}, study=study)
        kept.is_valid()
        for line in report.refused:
            kept.add_error("emails", f"Not invited: {line}.")
        return _study_page(request, study, kept)
    if not lines:
        messages.info(request, "Nobody to invite: give e-mail addresses or choose experts.")
    return redirect("turing:study_detail", study_id=study.pk)


@study_manager_required
@require_POST
def study_remind(request: HttpRequest, study_id: int) -> HttpResponse:
    """Remind every invited reader who has not finished: their link again, recorded."""
    study = get_object_or_404(Study, pk=study_id)
    try:
        reminded = services.reminders_send(study=study, site_url=_site_url(request), actor=request.user)
    except services.StudyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Reminded {', '.join(reminded)} (each with a new link; the earlier one no longer works)."
            if reminded
            else "Every invited reader has finished (or was withdrawn): nobody to remind.",
        )
    return redirect("turing:study_detail", study_id=study.pk)


def _site_url(request: HttpRequest) -> str:
    return settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")


@study_manager_required
@require_POST
def invitation_manage(request: HttpRequest, invitation_id: int, action: str) -> HttpResponse:
    """Send an invitation again (a new link; the old one stops working) or withdraw it."""
    invitation = get_object_or_404(Invitation, pk=invitation_id)
    if action not in ("resend", "revoke", "remind"):
        return HttpResponseBadRequest(
            f"Unknown invitation action {action[:40]!r}: use resend, remind or revoke.",
            content_type="text/plain",
        )
    if action == "remind":
        try:
            services.invitation_remind(invitation=invitation, site_url=_site_url(request), actor=request.user)
        except services.StudyError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Reminded {invitation.email}, with a new link.")
    elif action == "resend":
        try:
            services.invitation_resend(invitation=invitation, site_url=_site_url(request))
        except services.StudyError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request, f"Invitation sent again to {invitation.email}; the earlier link no longer works."
            )
    else:
        removed = services.invitation_revoke(invitation=invitation, actor=request.user)
        messages.success(
            request,
            f"The invitation of {invitation.email} is withdrawn: its link no longer works"
            + ("; they had answered nothing and are no longer a reader of this study." if removed else "."),
        )
    return redirect("turing:study_detail", study_id=invitation.study_id)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, secret: str) -> HttpResponse:
    """An invitation link. GET only shows the page (mail scanners open links); the button signs in."""
    if request.method == "GET":
        return render(request, "turing/invitation.html", {"secret": secret})
    try:
        invitation = services.invitation_accept(secret=secret)
    except services.InvitationError as exc:
        return render(request, "turing/invitation_failed.html", {"reason": str(exc)}, status=410)
    login(request, invitation.reader, backend="django.contrib.auth.backends.ModelBackend")
    study_url = reverse("turing:study_read", args=[invitation.study_id])
    if not invitation.reader.has_usable_password():
        return redirect(f"{reverse('turing:password_set')}?next={study_url}")
    return redirect(study_url)


@login_required
@require_http_methods(["GET", "POST"])
def password_set(request: HttpRequest) -> HttpResponse:
    """A reader who came in by an invitation link chooses a password to sign in again later; once they
    have one, changing it needs the current one (a session taken over cannot lock its owner out)."""
    target = request.GET.get("next", "")
    next_url = target if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) else "/"
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # login_required: never anonymous here
    first = not user.has_usable_password()  # only an invitation's account has none, until it sets one
    form_class = SetPasswordForm if first else PasswordChangeForm
    form = form_class(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, user)
        messages.success(request, "Password saved.")
        return redirect(next_url)
    return render(request, "turing/password_set.html", {"form": form, "next": next_url, "first": first})


@study_manager_required
@require_POST
def reader_remove(request: HttpRequest, study_id: int, assignment_id: int) -> HttpResponse:
    """Remove a reader from a study, with the reason the form gives (recorded)."""
    study = get_object_or_404(Study, pk=study_id)
    try:
        services.reader_remove(
            study=study,
            assignment_id=assignment_id,
            reason=request.POST.get("reason", ""),
            actor=request.user,
        )
    except services.StudyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            "The reader is removed: their session answers nothing more, and their answers stay in the "
            "exports and out of every statistic.",
        )
    return redirect("turing:study_detail", study_id=study.pk)


@study_manager_required
@require_POST
def study_status(request: HttpRequest, study_id: int) -> HttpResponse:
    """Close or reopen a study: first a page that says what happens to readers part-way through, then
    the change once the manager confirms."""
    study = get_object_or_404(Study, pk=study_id)
    status = request.POST.get("status", "")
    if "confirm" not in request.POST:
        context = {
            "study": study,
            "status": status,
            "part_way": selectors.study_readers_part_way(study=study),
        }
        return render(request, "turing/study_status_confirm.html", context)
    try:
        services.study_set_status(study=study, status=status, actor=request.user)
    except services.StudyError as exc:
        messages.error(request, str(exc))
    else:
        done = "closed: readers' pages turn read-only within seconds" if status == "closed" else "open again"
        messages.success(request, f"The study is {done}.")
    return redirect("turing:study_detail", study_id=study.pk)
