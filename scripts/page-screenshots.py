"""Screenshot every page of a running workbench in Chromium, as a signed-in user sees it.

    python scripts/page-screenshots.py --url http://127.0.0.1:5006 \
        --password-file state/admin-password --out docs/screenshots/after [--dark] [--run RUN_ID]

For walking through the app after a change (the before/after pictures of a UI change): each page
is opened at 1440x900, given time to draw its charts, and saved full height as PAGE.png
(PAGE-dark.png with --dark, through the theme cookie the header's toggle sets). Needs the test
extras (Playwright): the venv that ``./run test`` sets up.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PAGES = ["/", "/backtest", "/runs", "/sweeps", "/results", "/compare", "/catalog", "/engines",
         "/pipeline", "/account", "/users"]
SETTLE_MS = 2_500  # charts and tables draw after the page's heading appears


def _name(path: str) -> str:
    return path.strip("/").split("?")[0] or "overview"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's address")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--dark", action="store_true", help="also take the dark theme")
    parser.add_argument("--run", action="append", default=[],
                        help="run id shown on Results (first) and Compare (all)")
    parser.add_argument("--pages", nargs="*", default=PAGES)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no Chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    password = args.password_file.read_text().strip()
    args.out.mkdir(parents=True, exist_ok=True)
    query = {"/results": f"?run={args.run[0]}" if args.run else "",
             "/compare": "?" + "&".join(f"run={r}" for r in args.run) if args.run else ""}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        for theme in ["light", "dark"] if args.dark else ["light"]:
            context = browser.new_context(viewport={"width": args.width, "height": args.height})
            response = context.request.post(f"{args.url}/login", max_redirects=0, form={
                "username": args.username, "password": password, "next": "/"})
            if response.status != 303:
                print(f"error: sign-in as {args.username} failed ({response.status})",
                      file=sys.stderr)
                return 1
            if theme == "dark":
                context.add_cookies([{"name": "workbench_theme", "value": "dark",
                                      "url": args.url}])
            tab = context.new_page()
            for path in args.pages:
                tab.goto(args.url + path + query.get(path, ""))
                tab.get_by_role("heading", level=2).first.wait_for(timeout=60_000)
                tab.wait_for_timeout(SETTLE_MS)
                suffix = "-dark" if theme == "dark" else ""
                target = args.out / f"{_name(path)}{suffix}.png"
                tab.screenshot(path=str(target), full_page=True)
                print(target)
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
