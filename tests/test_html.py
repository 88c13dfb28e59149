"""The demo run's HTML as stakeholders get it: offline, no code, and clean in a real headless Chromium."""

from pathlib import Path

import pytest

from htmlcheck import code_classes, offline_problems, read_page


def pages(run_dir: Path) -> list[Path]:
    return [run_dir / "index.html"] + sorted(run_dir.glob("[0-9][0-9]_*.html"))


def test_demo_run_writes_the_contract_files(demo_run):
    assert (demo_run / "index.html").is_file() and (demo_run / "manifest.json").is_file()
    assert (demo_run / "00_data_quality.html").is_file() and (demo_run / "00_data_quality.ipynb").is_file()
    assert (demo_run / "data" / "column_profile.csv").is_file()
    # the activity log kept for the notebooks is gone with the run
    assert (demo_run / "data" / "behaviour_features.csv").is_file() and not (demo_run / ".cache").exists()


def test_every_page_is_offline_and_has_no_code(demo_run):
    for page in pages(demo_run):
        parsed = read_page(page)
        assert offline_problems(parsed) == [], page.name
        assert code_classes(parsed) == set(), page.name
        assert "import funnel_lab" not in page.read_text(encoding="utf-8")


def test_report_opens_with_its_summary(demo_run):
    text = "".join(read_page(demo_run / "00_data_quality.html").text)
    assert text.index("Data quality") < text.index("The opportunities table:") < text.index("Inputs") < text.index("Column map")


def _open(browser, url: str):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: r.url.startswith(("file:", "data:", "about:")) or problems.append(f"request: {r.url}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.goto(url, wait_until="load")
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).length")
    if broken:
        problems.append(f"{broken} broken image(s)")
    return page, problems


@pytest.mark.browser
def test_chromium_opens_index_and_every_report_cleanly(demo_run, browser):
    index, problems = _open(browser, (demo_run / "index.html").as_uri())
    assert problems == []
    hrefs = index.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    index.close()
    assert any(h.endswith("00_data_quality.html") for h in hrefs)
    for href in hrefs:
        assert href.startswith("file://"), href
        target = Path(href.removeprefix("file://").split("#")[0])
        assert target.is_file(), f"index links to a missing file: {target}"
        if target.suffix == ".html":
            page, problems = _open(browser, href)
            assert problems == [], (target.name, problems)
            assert page.locator("img").count() >= 1
            page.close()


@pytest.mark.browser
def test_chinese_run_renders_in_chinese(zh_run, browser):
    page, problems = _open(browser, (zh_run / "00_data_quality.html").as_uri())
    assert problems == []
    assert page.locator("html").get_attribute("lang") == "zh"
    assert page.locator("h1").first.inner_text().startswith("数据质量")
    assert "商机" in page.locator("body").inner_text()
    page.close()
