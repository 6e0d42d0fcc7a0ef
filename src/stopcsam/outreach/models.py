"""Outreach data: front-door content, the resource directory, partners and their API keys,
the term-list version stamp, daily funnel counters and anonymous survey responses.

Nothing here links to a person: counters are daily aggregates per campaign and language,
survey responses carry no participant, session or time finer than a day.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from stopcsam.accounts.models import LANGUAGE_CHOICES

CAMPAIGN_CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
campaign_code_validator = RegexValidator(
    CAMPAIGN_CODE_PATTERN, _("Use 1 to 32 lower-case letters, digits or dashes.")
)


class PageSlug(models.TextChoices):
    ABOUT = "about", _("What this service is")
    HOW = "how-it-works", _("How it works")
    CONFIDENTIALITY = "confidentiality", _("Confidentiality")
    DEFINITIONS = "definitions", _("Definitions")
    FAQ = "faq", _("Questions and answers")
    CRISIS = "crisis", _("Crisis lines")


class PageStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class Page(models.Model):
    """One front-door page in one language. Only published pages are shown to visitors.

    The body is plain text with blank lines between paragraphs; a line starting with "## " is a
    heading and a line starting with "- " a list item. No HTML, so nothing can inject scripts.
    """

    slug = models.CharField(_("page"), max_length=32, choices=PageSlug.choices)
    language = models.CharField(_("language"), max_length=5, choices=LANGUAGE_CHOICES)
    title = models.CharField(_("title"), max_length=200)
    summary = models.CharField(_("summary"), max_length=400, blank=True)
    body = models.TextField(_("text"), max_length=20000)
    status = models.CharField(
        _("status"), max_length=10, choices=PageStatus.choices, default=PageStatus.DRAFT
    )
    updated_at = models.DateTimeField(_("updated"))
    published_at = models.DateTimeField(_("published"), null=True, blank=True)

    class Meta:
        ordering = ["slug", "language"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "language"], name="outreach_page_unique")
        ]
        verbose_name = _("front-door page")
        verbose_name_plural = _("front-door pages")

    def __str__(self) -> str:
        return f"{self.get_slug_display()} ({self.language})"


class ResourceKind(models.TextChoices):
    HELPLINE = "helpline", _("Helpline")
    CHAT = "chat", _("Chat")
    THERAPY = "therapy", _("Therapy")
    SELF_HELP = "self-help", _("Self-help")
    CRISIS = "crisis", _("Crisis")


class Resource(models.Model):
    """A support service in the directory ("get support in your country")."""

    country = models.CharField(
        _("country"),
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$", _("Use a two-letter country code."))],
        help_text=_("ISO 3166 two-letter code; XX for services open to every country."),
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("type"), max_length=16, choices=ResourceKind.choices)
    languages = models.JSONField(_("languages"), default=list)
    description = models.CharField(_("description"), max_length=600, blank=True)
    website = models.URLField(_("website"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    hours = models.CharField(_("hours"), max_length=200, blank=True)
    cost = models.CharField(_("cost"), max_length=200, blank=True)
    anonymous = models.BooleanField(_("anonymous"), default=False)
    active = models.BooleanField(_("shown"), default=True)

    class Meta:
        ordering = ["country", "name"]
        constraints = [
            models.UniqueConstraint(fields=["country", "name"], name="outreach_resource_unique")
        ]
        verbose_name = _("support service")
        verbose_name_plural = _("support services")

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"

    def text_in(self, language: str) -> ResourceText:
        """Its description, hours and cost in ``language`` when written in it, else as the
        resource itself gives them (a German service described in English on the German
        page was a usability finding), each on its own: a text with only a description left
        the hours and cost out of the page. Reads the prefetched ``texts``."""
        written = next((t for t in self.texts.all() if t.language == language), None)
        return ResourceText(
            resource=self,
            language=language,
            description=(written and written.description) or self.description,
            hours=(written and written.hours) or self.hours,
            cost=(written and written.cost) or self.cost,
        )


class ResourceText(models.Model):
    """A support service's description, hours and cost in one of the site's languages."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="texts")
    language = models.CharField(_("language"), max_length=8, choices=LANGUAGE_CHOICES)
    description = models.CharField(_("description"), max_length=600, blank=True)
    hours = models.CharField(_("hours"), max_length=200, blank=True)
    cost = models.CharField(_("cost"), max_length=200, blank=True)

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "language"], name="outreach_resource_text_unique"
            )
        ]
        verbose_name = _("text in another language")
        verbose_name_plural = _("texts in other languages")

    def __str__(self) -> str:
        return f"{self.resource_id} ({self.language})"


class Campaign(models.Model):
    """A code that travels in links (``?c=CODE``) so steps can be counted per campaign."""

    code = models.CharField(
        _("code"), max_length=32, unique=True, validators=[campaign_code_validator]
    )
    label = models.CharField(_("label"), max_length=200, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")

    def __str__(self) -> str:
        return self.code


class Partner(models.Model):
    """A platform (search engine, host, forum) that calls the deterrence API."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="partners", verbose_name=_("campaign")
    )
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("partner")
        verbose_name_plural = _("partners")

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A partner's API key. Only a SHA-256 digest is kept; the key is shown once."""

    # PROTECT: a partner with keys is never deleted; its keys are revoked (audited).
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="keys", verbose_name=_("partner")
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    label = models.CharField(_("label"), max_length=200, blank=True)
    rate_per_minute = models.PositiveIntegerField(_("requests per minute"), default=600)
    created_at = models.DateTimeField(_("created"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        ordering = ["partner", "-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.partner} {self.prefix}…"


class TermListStamp(models.Model):
    """The version of the term lists every process should be using (one row)."""

    version = models.PositiveIntegerField(default=0)
    digest = models.CharField(max_length=64, blank=True)
    term_count = models.PositiveIntegerField(default=0)
    loaded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"term lists v{self.version}"


class FunnelCount(models.Model):
    """How often a step happened on one day, for one campaign and language. Never per person."""

    day = models.DateField()
    campaign = models.CharField(max_length=32, blank=True)
    language = models.CharField(max_length=5)
    step = models.CharField(max_length=32)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "campaign", "language", "step"], name="outreach_funnel_unique"
            )
        ]
        indexes = [models.Index(fields=["step", "day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.campaign or '-'} {self.language} {self.step}: {self.count}"


class SurveyResponse(models.Model):
    """One anonymous intercept-survey answer set: no person, no session, only the day."""

    instrument_key = models.CharField(max_length=64)
    instrument_version = models.CharField(max_length=32)
    language = models.CharField(max_length=5)
    day = models.DateField()
    answers = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["instrument_key", "instrument_version"])]

    def __str__(self) -> str:
        return f"{self.instrument_key} v{self.instrument_version} ({self.day})"
