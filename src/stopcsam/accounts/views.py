"""Thin views: validate, call a service, render. No business rules live here."""

from __future__ import annotations

import time
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse, translate_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from stopcsam.accounts import services
from stopcsam.accounts.decorators import participant_required, staff_verified_required
from stopcsam.accounts.exceptions import (
    InvalidCodenameError,
    InvitationCodeError,
    InvitationInvalidError,
    StaffAccountLockedError,
    StaffEnrolmentNeededError,
    StaffLoginFailedError,
    TwoFactorCodeError,
    UsernameTakenError,
)
from stopcsam.accounts.forms import (
    CodenameLoginForm,
    DeleteAccountForm,
    InvitationAcceptForm,
    SignupForm,
    StaffEnrolForm,
    StaffLoginForm,
    StaffPasswordChangeForm,
)
from stopcsam.accounts.sessions import participant_login, participant_logout

# --- participants ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponseBase:
    if request.participant:  # type: ignore[attr-defined]
        return redirect(_safe_next(request) or _participant_home())
    form = SignupForm(_posted(request), initial={"language": get_language()})
    if request.method == "POST" and form.is_valid():
        participant, codename = services.participant_create(language=form.cleaned_data["language"])
        participant_login(request, participant)
        # Rendered, not redirected: the codename exists only in this one response.
        return _codename_page(request, codename)
    return render(request, "accounts/signup.html", {"form": form}, status=_form_status(form))


@participant_required
@require_POST
def codename_again(request: HttpRequest) -> HttpResponseBase:
    """The codename page once more, in another language: its language buttons post the
    codename here, as a link to the page in that language lost it for good. Shown only if
    it is the signed-in participant's own; anything else goes on as the page would."""
    form = CodenameLoginForm(request.POST)
    if form.is_valid():
        codename = form.cleaned_data["codename"]
        try:
            owner = services.participant_authenticate(codename=codename)
        except InvalidCodenameError:
            owner = None
        if owner is not None and owner.pk == request.participant.pk:  # type: ignore[attr-defined]
            return _codename_page(request, codename)
    return redirect(_safe_next(request) or _participant_home())


def _codename_page(request: HttpRequest, codename: str) -> HttpResponse:
    next_url = _safe_next(request) or _participant_home()
    again = reverse("accounts:codename_again")
    languages = [
        {
            "code": code,
            "name": name,
            "url": f"{translate_url(again, code)}?next={quote(translate_url(next_url, code))}",
            "current": code == get_language(),
        }
        for code, name in settings.LANGUAGES
    ]
    context = {"codename": codename, "next_url": next_url, "languages": languages}
    return render(request, "accounts/codename.html", context)


@require_http_methods(["GET", "POST"])
def participant_login_view(request: HttpRequest) -> HttpResponseBase:
    form = CodenameLoginForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            participant = services.participant_authenticate(codename=form.cleaned_data["codename"])
        except InvalidCodenameError:
            # On the field, not the form: the input is then marked invalid and described by
            # the message, which a screen reader announces there.
            form.add_error(
                "codename", _("We could not find that codename. Check the words and try again.")
            )
        else:
            participant_login(request, participant)
            return redirect(_safe_next(request) or _participant_home())
    return render(request, "accounts/login.html", {"form": form}, status=_form_status(form))


@require_POST
def participant_logout_view(request: HttpRequest) -> HttpResponseBase:
    participant_logout(request)
    return redirect("outreach:home")


@participant_required
def me(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/me.html")


@participant_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponseBase:
    form = DeleteAccountForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        services.participant_delete(participant=request.participant)  # type: ignore[attr-defined]
        participant_logout(request)
        messages.success(request, _("Your account has been deleted."))
        return redirect("outreach:home")
    return render(request, "accounts/delete.html", {"form": form}, status=_form_status(form))


# --- staff ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def staff_login(request: HttpRequest) -> HttpResponseBase:
    form = StaffLoginForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        device_cookie = request.COOKIES.get(settings.STAFF_DEVICE_COOKIE_NAME, "")
        try:
            signed_in = services.staff_authenticate(
                **form.cleaned_data, device_cookie=device_cookie
            )
        except StaffLoginFailedError:
            form.add_error(
                None,
                _(
                    "Login failed. Check your username, password and one-time code. "
                    "After repeated failures, logging in from this browser is paused "
                    "for a while."
                ),
            )
        except StaffEnrolmentNeededError as exc:
            request.session.cycle_key()
            request.session[ENROL_SESSION_KEY] = {
                "user": exc.user_id,
                "role": exc.role,
                "key": services.totp_key_new(),
                "until": time.time() + ENROL_SECONDS,
            }
            return redirect("accounts:staff_enrol")
        else:
            return _staff_signed_in(request, signed_in)
    return render(request, "accounts/staff_login.html", {"form": form}, status=_form_status(form))


def _staff_signed_in(request: HttpRequest, signed_in: services.StaffLogin) -> HttpResponseBase:
    totp_device = signed_in.totp_device
    login(request, totp_device.user, backend="django.contrib.auth.backends.ModelBackend")
    otp_login(request, totp_device)
    response = redirect(_safe_next(request) or "accounts:staff_home")
    _set_device_cookie(response, signed_in.device_cookie)
    return response


# An account whose two-factor login was reset, after its password: the new authenticator's
# key and how long this browser has to set it up, kept in the session only.
ENROL_SESSION_KEY = "staff_enrol"
ENROL_SECONDS = 600


@require_http_methods(["GET", "POST"])
def staff_enrol(request: HttpRequest) -> HttpResponseBase:
    pending = request.session.get(ENROL_SESSION_KEY)
    if not pending or pending["until"] < time.time():
        request.session.pop(ENROL_SESSION_KEY, None)
        return redirect("accounts:staff_login")
    form = StaffEnrolForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            signed_in = services.staff_two_factor_enrol(
                user_id=pending["user"],
                key=pending["key"],
                otp_token=form.cleaned_data["otp_token"],
            )
        except TwoFactorCodeError:
            form.add_error(
                "otp_token",
                _("That code did not match. Check the time on your phone and try the newest code."),
            )
        except StaffLoginFailedError:
            request.session.pop(ENROL_SESSION_KEY, None)
            return redirect("accounts:staff_login")
        else:
            del request.session[ENROL_SESSION_KEY]
            return _staff_signed_in(request, signed_in)
    return render(
        request,
        "accounts/staff_enrol.html",
        {"form": form, **_totp_enrolment(pending["key"], pending["role"])},
        status=_form_status(form),
    )


def _set_device_cookie(response: HttpResponseBase, value: str) -> None:
    """Long-lived, HttpOnly, same-site only; Secure as the session cookie is (and on any
    HTTPS request, by the privacy middleware)."""
    response.set_cookie(
        settings.STAFF_DEVICE_COOKIE_NAME,
        value,
        max_age=settings.STAFF_DEVICE_COOKIE_DAYS * 24 * 3600,
        path="/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )


@require_POST
def staff_logout(request: HttpRequest) -> HttpResponseBase:
    logout(request)
    return redirect("accounts:staff_login")


@staff_verified_required
def staff_home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/staff_home.html")


@staff_verified_required
@require_http_methods(["GET", "POST"])
def staff_password(request: HttpRequest) -> HttpResponseBase:
    """Change one's password: the old one, and the new one twice (Django's form and the
    password validators). The other devices are signed out; this one stays signed in."""
    form = StaffPasswordChangeForm(request.user, _posted(request))  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        user = request.user
        try:
            device_cookie = services.staff_password_change(
                user=user,  # type: ignore[arg-type]
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password1"],
                device_cookie=request.COOKIES.get(settings.STAFF_DEVICE_COOKIE_NAME, ""),
            )
        except StaffAccountLockedError:
            form.add_error(
                None,
                _(
                    "Too many wrong passwords. Changing the password from this browser is "
                    "paused for a while."
                ),
            )
        except StaffLoginFailedError:
            form.add_error("old_password", form.error_messages["password_incorrect"])
        else:
            update_session_auth_hash(request, user)  # type: ignore[arg-type]
            messages.success(
                request, _("Your password has been changed. Your other devices are signed out.")
            )
            response = redirect("accounts:staff_home")
            _set_device_cookie(response, device_cookie)
            return response
    return render(
        request, "accounts/staff_password.html", {"form": form}, status=_form_status(form)
    )


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponseBase:
    try:
        invitation = services.staff_invitation_open(token=token)
    except InvitationInvalidError:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = InvitationAcceptForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.staff_invitation_accept(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                otp_token=form.cleaned_data["otp_token"],
            )
        except InvitationCodeError:
            form.add_error(
                "otp_token",
                _("That code did not match. Check the time on your phone and try the newest code."),
            )
        except UsernameTakenError:
            form.add_error("username", _("This username is taken."))
        except InvitationInvalidError:
            return render(request, "accounts/invitation_invalid.html", status=404)
        else:
            messages.success(request, _("Your account is ready. Please log in."))
            return redirect("accounts:staff_login")
    key = services.invitation_totp_key(token)
    return render(
        request,
        "accounts/invitation_accept.html",
        {
            "form": form,
            "invitation": invitation,
            **_totp_enrolment(key, invitation.role),
        },
        status=_form_status(form),
    )


def _totp_enrolment(hex_key: str, label: str) -> dict[str, str]:
    import base64

    import segno

    secret = base64.b32encode(bytes.fromhex(hex_key)).decode().rstrip("=")
    uri = f"otpauth://totp/{settings.OTP_TOTP_ISSUER}:{label}?secret={secret}&issuer={settings.OTP_TOTP_ISSUER}"
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    return {"totp_secret": secret, "totp_uri": uri, "totp_qr_svg": qr_svg}


def _participant_home() -> str:
    """Where a participant lands after logging in: their account, or the study's page."""
    return reverse(settings.STOPCSAM_PARTICIPANT_HOME)


def _form_status(form: object) -> int:
    errors = getattr(form, "errors", None)
    return 400 if errors else 200


def _safe_next(request: HttpRequest) -> str | None:
    target = request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _posted(request: HttpRequest) -> QueryDict | None:
    """Bind forms on POST even when the body is empty (an empty POST is still a submission)."""
    return request.POST if request.method == "POST" else None
