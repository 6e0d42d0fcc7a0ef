"""Coordinators manage partners and keys in the admin; the key is shown once, then only its
prefix; revoking is an admin action, and keys cannot be deleted."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import pytest
from django.test import Client

from stopcsam.conftest import OtherSave, StaffPersona
from stopcsam.core.clock import now
from stopcsam.core.models import AuditEvent
from stopcsam.outreach import services
from stopcsam.outreach.models import ApiKey, Campaign, Page, Partner, Resource, ResourceText

pytestmark = pytest.mark.django_db


def test_a_coordinator_creates_a_key_that_is_shown_once_and_works(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    partner = services.partner_create(name="Forum", campaign_code="forum")
    client = staff_client(coordinator)
    response = client.post(
        "/admin/outreach/apikey/add/",
        {"partner": partner.pk, "label": "production", "rate_per_minute": 100},
        follow=True,
    )
    shown = re.search(r"(sk_[0-9a-f]{8}_[A-Za-z0-9_-]+)", response.content.decode())
    assert shown, "the new key is shown to the coordinator"
    key = shown.group(1)
    api = Client().post(
        "/api/v1/deterrence/check",
        data='{"query": "demoword"}',
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert api.status_code == 200 and api.json()["help_url"].endswith("?c=forum")
    listing = client.get("/admin/outreach/apikey/").content.decode()
    assert key not in listing and ApiKey.objects.get().prefix in listing


def test_revoking_from_the_admin_is_audited_and_keys_cannot_be_deleted(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    partner = services.partner_create(name="Forum", campaign_code="forum")
    api_key, _key = services.api_key_create(partner=partner)
    client = staff_client(coordinator)
    client.post(
        "/admin/outreach/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert AuditEvent.objects.filter(action="outreach.api_key_revoked").count() == 1
    response = client.get(f"/admin/outreach/apikey/{api_key.pk}/delete/")
    assert response.status_code == 403


def test_a_partner_is_never_deleted_with_its_keys(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """Deleting a partner took its keys, unrevoked and unaudited: it is refused, in the
    admin and in the database; keys are revoked instead."""
    from django.db.models import ProtectedError

    partner = services.partner_create(name="Forum", campaign_code="forum")
    services.api_key_create(partner=partner)
    client = staff_client(coordinator)
    assert client.get(f"/admin/outreach/partner/{partner.pk}/delete/").status_code == 403
    client.post(f"/admin/outreach/partner/{partner.pk}/delete/", {"post": "yes"})
    assert ApiKey.objects.filter(partner=partner, revoked_at=None).count() == 1
    with pytest.raises(ProtectedError):
        partner.delete()


def test_other_staff_cannot_reach_the_admin(
    therapist: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    response = staff_client(therapist).get("/admin/outreach/apikey/")
    assert response.status_code == 302


@pytest.mark.parametrize("languages", ["5", '"de"', "fr", '["de"]', []])
def test_a_service_s_languages_are_checked_in_the_admin(
    coordinator: StaffPersona, staff_client: Callable[..., Client], languages: str
) -> None:
    """The field took any JSON: 5 was saved, and the public directory filtered by
    language answered 500 (``"de" in 5``); "de" matched "e" and showed as "d, e"."""
    from stopcsam.outreach.models import Resource

    client = staff_client(coordinator)
    response = client.post(
        "/admin/outreach/resource/add/",
        {
            "country": "AT",
            "name": "Demo service",
            "kind": "chat",
            "languages": languages,
            "texts-TOTAL_FORMS": "0",
            "texts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert not Resource.objects.filter(name="Demo service").exists()
    assert Client().get("/en/support/?language=de").status_code == 200


def test_a_service_s_languages_are_kept_in_the_admin(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    from stopcsam.outreach.models import Resource

    client = staff_client(coordinator)
    response = client.post(
        "/admin/outreach/resource/add/",
        {
            "country": "AT",
            "name": "Demo service",
            "kind": "chat",
            "languages": ["de", "en"],
            "texts-TOTAL_FORMS": "0",
            "texts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    saved = Resource.objects.get(name="Demo service")
    assert saved.languages == ["de", "en"]
    form = client.get(f"/admin/outreach/resource/{saved.pk}/change/").content.decode()
    assert len(re.findall(r'<input[^>]*name="languages"[^>]*checked', form)) == 2


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--campaign", "Search Co!"], "campaign code"),
        (["--campaign", "new-co", "--rate", "0"], "--rate"),
        # Past the column's range: a traceback (SQLite: OverflowError; PostgreSQL: DataError).
        (["--campaign", "new-co", "--rate", str(10**20)], "--rate"),
        (["--campaign", "new-co", "--rate", str(2**31)], "--rate"),
        # Longer than the column: a DataError on PostgreSQL, stored whole on SQLite.
        (["--campaign", "new-co", "--partner", "N" * 201], "--partner"),
        (["--campaign", "new-co", "--label", "L" * 201], "--label"),
    ],
)
def test_the_key_command_refuses_bad_input_before_creating_anything(
    extra: list[str], said: str
) -> None:
    """A campaign code outside the pattern was stored: every help link of the partner then
    counted as "no campaign". With --rate 0 the partner was created, then the key refused."""
    from django.core.management import CommandError, call_command

    from stopcsam.outreach.models import Campaign, Partner

    with pytest.raises(CommandError, match=said):
        call_command("apikey", "create", "--partner", "New Co", *extra)
    assert not Partner.objects.exists() and not Campaign.objects.filter(partners=None).exists()
    assert not AuditEvent.objects.filter(action="outreach.partner_created").exists()


def test_a_key_without_any_budget_is_refused_in_the_admin(
    coordinator: StaffPersona, staff_client: Callable[..., Client]
) -> None:
    """Rate 0 was accepted: the key answered 429 to every request."""
    partner = services.partner_create(name="Forum", campaign_code="forum")
    response = staff_client(coordinator).post(
        "/admin/outreach/apikey/add/",
        {"partner": partner.pk, "label": "production", "rate_per_minute": 0},
    )
    assert response.status_code == 200 and not ApiKey.objects.exists()


# --- two coordinators saving the same unique value at once ----------------------------------


def test_a_campaign_code_saved_meanwhile_is_the_fields_error_not_a_500(
    coordinator: StaffPersona, staff_client: Callable[..., Client], other_save: OtherSave
) -> None:
    client = staff_client(coordinator)
    other_save.commit(Campaign.objects.create(code="spring", label="theirs"))
    response = client.post("/admin/outreach/campaign/add/", {"code": "spring", "label": "ours"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"code": ["Campaign with this Code already exists."]}
    assert list(Campaign.objects.values_list("label", flat=True)) == ["theirs"]


@pytest.mark.parametrize("renamed", [False, True])
def test_a_partner_name_saved_meanwhile_is_the_fields_error_not_a_500(
    coordinator: StaffPersona,
    staff_client: Callable[..., Client],
    other_save: OtherSave,
    renamed: bool,
) -> None:
    client = staff_client(coordinator)
    ours = services.partner_create(name="Search", campaign_code="search") if renamed else None
    other_save.commit(services.partner_create(name="Forum", campaign_code="forum"))
    form = {"name": "Forum", "campaign": Campaign.objects.get(code="forum").pk}
    url = f"/admin/outreach/partner/{ours.pk}/change/" if ours else "/admin/outreach/partner/add/"
    response = client.post(url, form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"name": ["Partner with this Name already exists."]}
    assert Partner.objects.filter(name="Forum").count() == 1
    assert Partner.objects.count() == (2 if renamed else 1)
    created = AuditEvent.objects.filter(action="outreach.partner_created")
    assert created.count() == Partner.objects.count()


def test_a_page_saved_meanwhile_is_the_forms_error_not_a_500(
    coordinator: StaffPersona, staff_client: Callable[..., Client], other_save: OtherSave
) -> None:
    client = staff_client(coordinator)
    Page.objects.filter(slug="faq", language="cs").delete()
    theirs = Page.objects.create(
        slug="faq", language="cs", title="Theirs", body="Text.", updated_at=now()
    )
    other_save.commit(theirs)
    form = {"slug": "faq", "language": "cs", "title": "Ours", "body": "Text.", "status": "draft"}
    response = client.post("/admin/outreach/page/add/", form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "__all__": ["Front-door page with this Page and Language already exists."]
    }
    assert Page.objects.get(slug="faq", language="cs").title == "Theirs"


def _resource_form(**texts: str) -> dict[str, object]:
    form: dict[str, object] = {
        "country": "DE",
        "name": "Beratung",
        "kind": "helpline",
        "languages": ["de"],
        "active": "on",
        "texts-TOTAL_FORMS": str(len(texts)),
        "texts-INITIAL_FORMS": "0",
    }
    for n, (language, description) in enumerate(texts.items()):
        form |= {f"texts-{n}-language": language, f"texts-{n}-description": description}
    return form


def test_a_support_service_saved_meanwhile_is_the_forms_error_not_a_500(
    coordinator: StaffPersona, staff_client: Callable[..., Client], other_save: OtherSave
) -> None:
    client = staff_client(coordinator)
    other_save.commit(Resource.objects.create(country="DE", name="Beratung", kind="chat"))
    response = client.post("/admin/outreach/resource/add/", _resource_form(en="Counselling"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "__all__": ["Support service with this Country and Name already exists."]
    }
    theirs = Resource.objects.get(country="DE", name="Beratung")
    assert theirs.kind == "chat" and not theirs.texts.exists()


def test_a_text_in_a_language_saved_meanwhile_is_the_inlines_error_not_a_500(
    coordinator: StaffPersona, staff_client: Callable[..., Client], other_save: OtherSave
) -> None:
    resource = Resource.objects.create(country="DE", name="Beratung", kind="chat")
    client = staff_client(coordinator)
    other_save.commit(ResourceText.objects.create(resource=resource, language="en", cost="Free"))
    url = f"/admin/outreach/resource/{resource.pk}/change/"
    response = client.post(url, _resource_form(en="Counselling"))
    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert inline.formset.errors == [
        {"__all__": ["Text in another language with this Resource and Language already exists."]}
    ]
    resource.refresh_from_db()
    assert resource.kind == "chat"  # the service's own change is not kept either
    assert [(t.language, t.description) for t in resource.texts.all()] == [("en", "")]


def test_a_key_prefix_drawn_twice_is_drawn_again_not_a_500(
    coordinator: StaffPersona, staff_client: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's prefix has 32 random bits and is unique: drawing one that another key has
    (about one in 4 million with a thousand keys) was a 500 in the admin."""
    partner = services.partner_create(name="Forum", campaign_code="forum")
    taken, _key = services.api_key_create(partner=partner)
    token_hex = secrets.token_hex
    drawn = [taken.prefix]
    monkeypatch.setattr(secrets, "token_hex", lambda n: drawn.pop() if drawn else token_hex(n))
    response = staff_client(coordinator).post(
        "/admin/outreach/apikey/add/",
        {"partner": partner.pk, "label": "second", "rate_per_minute": 100},
    )
    assert response.status_code == 302
    prefixes = ApiKey.objects.values_list("prefix", flat=True)
    assert len(set(prefixes)) == 2 and taken.prefix in prefixes
