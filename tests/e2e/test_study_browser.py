"""The study journey in Debian's Chromium: screening (ineligible and eligible), consent with a
downloaded copy, the baseline questionnaire, the randomization outcome, and withdrawal with
erasure. With JavaScript on and off, in two languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import stopcsam.study
from tests.e2e.audit import PageAudit
from tests.server import RunningServer

pytestmark = pytest.mark.browser
DEMO_PROTOCOL = Path(stopcsam.study.__file__).parent / "protocols" / "demo.yaml"


@pytest.fixture(scope="session")
def study_server(server: RunningServer) -> RunningServer:
    server.manage("study_load_protocol", str(DEMO_PROTOCOL))
    return server


def _count(server: RunningServer, model: str) -> int:
    code = f"from stopcsam.study.models import {model}; print({model}.objects.count())"
    return int(server.manage("shell", "-c", code).strip().splitlines()[-1])


def _screen(page: Any, *, age: str, language: str, audit: PageAudit) -> None:
    audit.check(page)
    page.locator("input[name=age]").fill(age)
    page.locator("input[name=recent_use][value=yes]").check()
    page.locator(f"input[name=language][value={language}]").check()
    page.locator("input[name=in_treatment][value=no]").check()
    page.locator("main button[type=submit]").click()
    audit.check(page)


def _fill_questionnaire(page: Any, audit: PageAudit) -> None:
    audit.check(page)
    for name in _radio_names(page):
        page.locator(f"input[name={name}]").first.check()
    for number in page.locator("main input[type=number]").all():
        number.fill("1")
    page.locator("main button[name=submit]").click()


def _radio_names(page: Any) -> list[str]:
    names: list[str] = []
    for radio in page.locator("main input[type=radio]").all():
        name = radio.get_attribute("name")
        if name not in names:
            names.append(name)
    return names


@pytest.mark.parametrize(
    ("language", "javascript"),
    [("en", True), ("de", False), ("de", True), ("en", False)],
    ids=["en-js", "de-no-js", "de-js", "en-no-js"],
)
def test_study_journey(
    study_server: RunningServer, browser: Any, language: str, javascript: bool
) -> None:
    base = study_server.url
    context = browser.new_context(
        java_script_enabled=javascript,
        accept_downloads=True,
        locale=language,
        viewport={"width": 390, "height": 844},
    )
    audit = PageAudit(base, javascript)
    audit.attach(context)
    page = context.new_page()

    # Ineligible: shown alternatives, nothing kept.
    page.goto(f"{base}/{language}/study/screening/")
    _screen(page, age="16", language=language, audit=audit)
    assert "Troubled Desire" in page.content()
    assert page.url == f"{base}/{language}/study/screening/"

    # Eligible: an anonymous account, then consent.
    page.goto(f"{base}/{language}/study/screening/")
    _screen(page, age="34", language=language, audit=audit)
    assert page.url.endswith(f"/{language}/study/eligible/")
    page.locator("main a.button").click()
    page.locator("main button[type=submit]").click()
    codename = page.locator("#codename").inner_text().strip()
    page.locator("#saved").check()
    page.locator("main button[type=submit]").click()
    assert page.url.endswith(f"/{language}/study/consent/")
    audit.check(page)
    for box in page.locator("main input[type=checkbox]").all():
        box.check()
    page.locator("main button[type=submit]").click()
    assert page.url.endswith(f"/{language}/study/")

    with page.expect_download() as download_info:
        page.locator(f"a[href='/{language}/study/consent/copy/']").click()
    copy = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert "SHA-256" in copy and codename not in copy

    # Baseline questionnaire; its completion shows the randomization outcome.
    links = page.locator("main a[href*='/study/questionnaire/baseline/']")
    assert links.count() == 3
    for _ in range(3):
        page.locator("main a[href*='/study/questionnaire/baseline/']").first.click()
        _fill_questionnaire(page, audit)
    assert page.url.endswith(f"/{language}/study/allocation/")
    assert page.locator("#arm").inner_text().strip()
    audit.check(page)

    # Withdraw and erase: the account and every study row are gone.
    enrolments = _count(study_server, "Enrolment")
    page.goto(f"{base}/{language}/study/withdraw/")
    audit.check(page)
    page.locator("input[name=choice][value=erase]").check()
    page.locator("input[name=confirm]").check()
    page.locator("main button[type=submit]").click()
    assert _count(study_server, "Enrolment") == enrolments - 1
    audit.check(page)
    page.goto(f"{base}/{language}/login/")
    page.locator("input[name=codename]").fill(codename)
    page.locator("main button[type=submit]").click()
    assert page.locator(".errorlist").count() == 1
    audit.assert_clean()
    context.close()
