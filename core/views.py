from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core import selectors, services
from core.accounts import LoginForm
from core.models import Job
from core.roles import is_study_manager, study_manager_required


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if is_study_manager(request.user):
        return redirect("dashboard")
    return redirect("turing:my_studies")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitors: is the database reachable, is the broker?"""
    db_ok, db_info = selectors.health_database()
    broker_ok, broker_info = selectors.health_broker()
    ok = db_ok and broker_ok
    body = {
        "status": "ok" if ok else "error",
        "database": {"ok": db_ok, "info": db_info},
        "broker": {"ok": broker_ok, "info": broker_info},
    }
    return JsonResponse(body, status=200 if ok else 503)


@study_manager_required
@require_GET
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id)
    return render(request, "core/job_detail.html", {"job": job})


@never_cache
@study_manager_required
@require_GET
def job_status(request: HttpRequest, job_id: str) -> JsonResponse:
    try:
        job = Job.objects.get(pk=job_id)
    except (Job.DoesNotExist, ValueError):
        raise Http404("No such job.") from None
    return JsonResponse(selectors.job_status(job=job))


@study_manager_required
@require_POST
def job_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id)
    services.job_cancel(job=job)
    return redirect("job_detail", job_id=job.pk)


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login page, refusing further tries for a while after repeated failures."""

    redirect_authenticated_user = True
    form_class = LoginForm

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        address = request.META.get("REMOTE_ADDR")
        wait = services.login_blocked_for(username=username, address=address)
        if wait:
            after = f"{wait} seconds" if wait < 120 else f"{wait // 60 + 1} minutes"
            message = f"Too many failed log-ins. Please wait {after} and try again."
            context = self.get_context_data(form=self.form_class(request), blocked_message=message)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        services.login_failure_record(
            username=self.request.POST.get("username", ""), address=self.request.META.get("REMOTE_ADDR")
        )
        return super().form_invalid(form)
