"""Thin views of the front door, the resource directory, the widget and the staff funnel."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods

from stopcsam.accounts.decorators import staff_verified_required
from stopcsam.core import clock
from stopcsam.core.forms import ServiceDateField
from stopcsam.core.instruments import instrument_form, localised
from stopcsam.core.signals import FUNNEL_STEPS, funnel_step
from stopcsam.outreach import selectors, services, texts
from stopcsam.outreach.api import LANGUAGES, help_url
from stopcsam.outreach.models import CAMPAIGN_CODE_PATTERN, PageSlug, ResourceKind
from stopcsam.outreach.receivers import SESSION_CAMPAIGN
from stopcsam.outreach.survey import current_survey

LANGUAGE_NAMES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("cs", "Čeština"),
    ("pt", "Português"),
    ("es", "Español"),
]

# Sec-Fetch-Site values of a click from one of our own pages (not an arrival from outside).
INTERNAL_NAVIGATION = {"same-origin", "same-site"}


def _known_campaign(raw: str | None) -> str:
    code = (raw or "").strip()
    if (
        code
        and re.fullmatch(CAMPAIGN_CODE_PATTERN, code)
        and selectors.campaign_is_known(code=code)
    ):
        return code
    return ""


# --- front door ------------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    campaign = _known_campaign(request.GET.get("c"))
    if campaign:
        # Kept in the visitor's own server-side session only, so later steps count for it.
        request.session[SESSION_CAMPAIGN] = campaign
    if _is_arrival(request):
        funnel_step.send(sender=home, step="landing_visit", request=request)
    language = get_language()
    context = {
        "pages": selectors.pages_published(language=language),
        "crisis": selectors.page_published(slug=PageSlug.CRISIS, language=language),
    }
    return render(request, "outreach/home.html", context)


def _is_arrival(request: HttpRequest) -> bool:
    """An arrival from outside, not a click between our own pages. The help hop marks its
    redirect, because a click in the framed widget looks same-origin to the browser."""
    if "c" in request.GET or "via" in request.GET:
        return True
    return request.headers.get("Sec-Fetch-Site") not in INTERNAL_NAVIGATION


@require_GET
def page(request: HttpRequest, slug: str) -> HttpResponse:
    shown = selectors.page_published(slug=slug, language=get_language())
    if shown is None:
        raise Http404
    return render(request, "outreach/page.html", {"page": shown})


@require_GET
def go(request: HttpRequest) -> HttpResponseBase:
    """The counted hop from a warning (API or widget) to the landing page."""
    campaign = _known_campaign(request.GET.get("c"))
    request.outreach_campaign = campaign  # type: ignore[attr-defined]
    funnel_step.send(sender=go, step="help_click", request=request)
    target = reverse("outreach:home")
    marker = {"c": campaign} if campaign else {"via": "help"}
    return redirect(f"{target}?{urlencode(marker)}")


# --- resource directory ------------------------------------------------------------------------


class DirectoryFilter(forms.Form):
    country = forms.ChoiceField(label=_("Country"), required=False)
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=lambda: [("", _("All languages")), *LANGUAGE_NAMES],
    )

    def __init__(self, *args: Any, countries: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = dict(COUNTRY_NAMES)
        country = self.fields["country"]
        assert isinstance(country, forms.ChoiceField)
        country.choices = [("", _("All countries"))] + [
            (code, names.get(code, code)) for code in countries
        ]


COUNTRY_NAMES = [
    ("DE", _("Germany")),
    ("AT", _("Austria")),
    ("CH", _("Switzerland")),
    ("CZ", _("Czechia")),
    ("ES", _("Spain")),
    ("PT", _("Portugal")),
    ("GB", _("United Kingdom")),
    ("IE", _("Ireland")),
    ("XX", _("Online, any country")),
]


@require_GET
def resources(request: HttpRequest) -> HttpResponse:
    form = DirectoryFilter(request.GET or None, countries=selectors.resource_countries())
    found = []
    if form.is_bound and form.is_valid():
        found = selectors.resources_for(**form.cleaned_data)
    elif not form.is_bound:
        found = selectors.resources_for()
    language = get_language()
    shown = [(resource, resource.text_in(language)) for resource in found]
    context = {"form": form, "resources": shown, "kinds": dict(ResourceKind.choices)}
    return render(request, "outreach/resources.html", context, status=400 if form.errors else 200)


# --- widget: the page variant that works without JavaScript ---------------------------------------


@require_GET
@xframe_options_exempt
@csp_override(
    {
        "default-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "script-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["*"],
    }
)
def widget_frame(request: HttpRequest) -> HttpResponse:
    """Framable by any partner page: this one view only. No session, no cookie."""
    lang = request.GET.get("lang", "")
    language = lang if lang in LANGUAGES else "en"
    raw_campaign = request.GET.get("c", "")
    campaign = raw_campaign if re.fullmatch(CAMPAIGN_CODE_PATTERN, raw_campaign) else ""
    with translation.override(language):
        context = {
            "lang": language,
            "title": str(texts.WIDGET_TITLE),
            "message": str(texts.WARNING),
            "button": str(texts.HELP_BUTTON),
            "help_url": help_url(request, language=language, campaign=campaign),
        }
        return render(request, "outreach/widget/frame.html", context)


# --- staff: the funnel ----------------------------------------------------------------------------


class FunnelFilter(forms.Form):
    start = ServiceDateField(label=_("From"), required=False)
    end = ServiceDateField(label=_("To"), required=False)
    campaign = forms.CharField(label=_("Campaign"), required=False, max_length=32)
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("All languages")), *LANGUAGE_NAMES]
    )
    shared = forms.BooleanField(label=_("As shared outside the site"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        today = clock.now().date()
        data["end"] = data.get("end") or today
        data["start"] = data.get("start") or data["end"] - timedelta(days=29)
        if data["start"] > data["end"]:
            raise forms.ValidationError(_("The start date must not be after the end date."))
        return data


STEP_LABELS = {
    "warning_shown": _("Warnings shown"),
    "help_click": _("Help clicks"),
    "landing_visit": _("Landing visits"),
    "screening_started": _("Screenings started"),
    "eligible": _("Eligible"),
    "consented": _("Consented"),
    "randomized": _("Randomised"),
}


@staff_verified_required
@require_GET
def funnel(request: HttpRequest) -> HttpResponse:
    form = FunnelFilter(request.GET or None)
    rows: list[dict[str, Any]] = []
    period: tuple[Any, Any] | None = None
    exact = selectors.funnel_may_see_exact(request.user)  # type: ignore[arg-type]
    if not form.is_bound or form.is_valid():
        data = form.cleaned_data if form.is_bound else _funnel_defaults()
        suppressed = bool(data.get("shared")) or not exact
        period = selectors.funnel_period(
            start=data["start"], end=data["end"], suppressed=suppressed
        )
        report = selectors.funnel_report(
            user=request.user,  # type: ignore[arg-type]
            start=data["start"],
            end=data["end"],
            campaign=data.get("campaign") or None,
            language=data.get("language") or None,
            shared=bool(data.get("shared")),
        )
        rows = [{"label": STEP_LABELS[r.step], "row": r} for r in report]
    context = {
        "form": form,
        "rows": rows,
        "campaigns": selectors.funnel_campaigns(),
        "exact": exact,
        "period": period,
        "steps": FUNNEL_STEPS,
    }
    return render(request, "outreach/funnel.html", context, status=400 if form.errors else 200)


def _funnel_defaults() -> dict[str, Any]:
    today = clock.now().date()
    return {"start": today - timedelta(days=29), "end": today}


# --- the anonymous intercept survey -----------------------------------------------------------


@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest) -> HttpResponse:
    instrument = current_survey()
    language = get_language()
    data = request.POST if request.method == "POST" else None
    form = instrument_form(instrument, language=language, data=data, partial=True)
    if data is not None and form.is_valid():
        # Sent again, it is the same answer: stored once, thanked each time.
        services.survey_answer_once(
            session=request.session,  # type: ignore[arg-type]  # the database engine
            instrument_key=instrument.key,
            instrument_version=instrument.version,
            language=language,
            answers=form.answers(),
        )
        return render(request, "outreach/survey_thanks.html")
    # The page starts the browser session its sendings share: two sendings at once from a
    # page without one (a double click) started two sessions and each was stored.
    request.session.setdefault(services.SESSION_SURVEYS_ANSWERED, [])
    context = {"form": form, "title": localised(instrument.title, language)}
    return render(request, "outreach/survey.html", context, status=400 if form.errors else 200)


@staff_verified_required
@require_GET
def survey_results(request: HttpRequest) -> HttpResponse:
    instrument = current_survey()
    language = get_language()
    shared = request.GET.get("shared") == "1"
    exact = selectors.funnel_may_see_exact(request.user) and not shared  # type: ignore[arg-type]
    total, cells = selectors.survey_aggregates(
        user=request.user,  # type: ignore[arg-type]
        instrument=instrument,
        shared=shared,
    )
    items = []
    for item in instrument.items:
        labels = {str(o.value): localised(o.label, language) for o in item.options}
        options = [{"label": labels[c.value], "count": c.count} for c in cells[item.key]]
        items.append({"label": localised(item.label, language), "options": options})
    context = {
        "title": localised(instrument.title, language),
        "total": total,
        "items": items,
        "exact": exact,
    }
    return render(request, "outreach/survey_results.html", context)
