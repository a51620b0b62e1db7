"""The admin in headless Chromium over the whole stack: a marketer runs a campaign to its
delivery counts, an analyst reads its analytics, a marketer is refused them; the providers
page. Screenshots of the main pages are saved (tests/browser/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from admin.core.roles import Role
from tests.browser.conftest import Browsing, skip_reason
from tests.logscan import register_text

if TYPE_CHECKING:
    from playwright.async_api import FilePayload, Page

_SKIP = skip_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")]


async def test_the_analytics_page_is_refused_to_a_marketer(browsing: Browsing) -> None:
    page = await browsing.log_in(Role.marketer, "marketer@example.ru")
    await browsing.shot(page, "home-marketer")
    assert await page.locator("#nav a", has_text="Analytics").count() == 0
    response = await page.goto("/analytics")
    assert response is not None and response.status == 403
    refused = page.locator("#error")
    assert await refused.get_attribute("data-status") == "403"
    assert "analytics" in (await refused.inner_text())
    await browsing.shot(page, "analytics-refused-marketer")


async def test_an_sre_disables_a_provider_and_edits_its_price(browsing: Browsing) -> None:
    page = await browsing.log_in(Role.sre, "sre@example.ru")
    await page.click("#nav a:has-text('Providers')")
    row = page.locator("#providers tr[data-provider='sim']")
    assert (await row.locator("td.state").inner_text()).strip() == "up"
    await browsing.shot(page, "providers")
    page.once("dialog", lambda dialog: dialog.accept())
    async with page.expect_navigation():
        await row.locator("button", has_text="Disable").click()
    assert (await row.locator("td.state").inner_text()).strip() == "disabled"
    async with page.expect_navigation():
        await row.locator("button", has_text="Enable").click()
    assert (await row.locator("td.state").inner_text()).strip() == "up"
    route = page.locator("#routes tr.route").first
    await route.locator("[name='price_per_part']").fill("cheap")
    await page.click("#save-routes")
    error = page.locator("#routes .field-error")
    await error.wait_for()
    assert "routes[0].price_per_part" in await error.inner_text()
    await browsing.shot(page, "providers-route-refused")
    await route.locator("[name='price_per_part']").fill("0.41")
    async with page.expect_navigation():
        await page.click("#save-routes")
    price = page.locator("#routes tr.route [name='price_per_part']").first
    assert await price.input_value() == "0.41"
    assert "set here by sre@example.ru" in await page.inner_text("#routing-source")


CSV = (
    "Телефон;Имя;Теги;Подписка;Согласие\n"
    "+7 921 000-00-01;Анна;vip;да;да\n"
    "89210000002;Борис;vip,new;да;да\n"
    "+79210000003;Вера;vip;да;да\n"
    "12345;Глеб;vip;да;да\n"
    "+79210000005;Дина;other;да;да\n"
)
TEXT = "Здравствуйте, {first_name}! Скидка 20% до воскресенья."


async def test_a_marketer_runs_a_campaign_and_an_analyst_reads_it(browsing: Browsing) -> None:
    for name in ("Анна", "Борис", "Вера"):  # the texts sent: never in a log line
        register_text(TEXT.format(first_name=name))
    page = await browsing.log_in(Role.marketer, "marketer@example.ru")
    await import_contacts(page)
    await browsing.shot(page, "contacts-imported")
    await build_audience(page, "VIP")
    await browsing.shot(page, "audience")
    await create_template(page, "Sale", TEXT)
    await browsing.shot(page, "template")
    await create_and_start_campaign(page, "November sale", "VIP", "Sale")
    await browsing.shot(page, "campaign-running")
    await watch_it_finish(page, delivered=3)
    await browsing.shot(page, "campaign-finished")
    analyst = await browsing.log_in(Role.analyst, "analyst@example.ru")
    await analyst.click("#nav a:has-text('Analytics')")
    await browsing.shot(analyst, "analytics")
    async with analyst.expect_navigation():
        await analyst.click("#campaign-results a:has-text('November sale')")
    assert (await analyst.inner_text("#sent")).strip() == "3"
    assert (await analyst.inner_text("#delivered")).startswith("3")
    await browsing.shot(analyst, "analytics-campaign")


async def import_contacts(page: Page) -> None:
    await page.click("#nav a:has-text('Contacts')")
    upload: FilePayload = {"name": "contacts.csv", "mimeType": "text/csv", "buffer": CSV.encode()}
    await page.set_input_files("#import-file", upload)
    async with page.expect_navigation():
        await page.click("#import-submit")
    assert (await page.inner_text("#import-inserted")).strip() == "4"
    assert (await page.inner_text("#import-failed")).strip() == "1"
    assert await page.locator("#import-errors tr[data-line='5']").count() == 1


async def build_audience(page: Page, name: str) -> None:
    await page.click("#nav a:has-text('Audiences')")
    async with page.expect_navigation():
        await page.click("#new-audience")
    await page.fill("#audience-name", name)
    if await page.locator("#rules .rule").count() == 0:
        await page.click("#rules button.add-rule")
    rule = page.locator("#rules .rule").first
    await rule.locator("select.field").select_option("tags")
    await rule.locator("select.op").select_option("any")
    await rule.locator("input.value").fill("vip")
    await page.locator("#audience-count[data-count='3']").wait_for()
    async with page.expect_navigation():
        await page.click("#save-audience")


async def create_template(page: Page, name: str, text: str) -> None:
    await page.click("#nav a:has-text('Templates')")
    await page.fill("#template-form [name='name']", name)
    await page.fill("#tpl-text", text)
    await page.locator("#preview-parts").filter(has_text="1").wait_for()
    async with page.expect_navigation():
        await page.click("#tpl-save")


async def create_and_start_campaign(page: Page, name: str, audience: str, template: str) -> None:
    await page.click("#nav a:has-text('Campaigns')")
    async with page.expect_navigation():
        await page.click("#new-campaign")
    await page.fill("#campaign-name", name)
    await page.select_option("#campaign-audience", label=audience)
    await page.select_option("#variant-rows .variant-template", label=template)
    await page.fill("#window-start", "")  # any time of day: the test runs at any hour
    await page.fill("#window-end", "")
    await page.click("#dry-run")
    await page.locator("#dry-run-eligible").filter(has_text="3").wait_for()
    async with page.expect_navigation():
        await page.click("#save-campaign")
    await page.click("#action-start")


async def watch_it_finish(page: Page, delivered: int) -> None:
    await page.locator("#campaign-state").filter(has_text="finished").wait_for(timeout=30_000)
    counted = page.locator("#progress-delivered").filter(has_text=str(delivered))
    await counted.wait_for(timeout=30_000)
