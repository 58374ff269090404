"""Headless Chromium for the browser tests (wallboard, agent desktop), driven by Selenium."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator


def headless_chromium(profile_dir: Path) -> Iterator:
    """A Selenium driver on headless Chromium with its own profile in `profile_dir`; quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,800", f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
