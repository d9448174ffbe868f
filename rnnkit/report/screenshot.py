"""Screenshots of a report in headless Chromium, and a check that they are not blank.

    python -m rnnkit.report.screenshot artifacts/reports/tiny.html --out shots/ [--height 2000]

writes shots/tiny-1280.png and shots/tiny-390.png (a laptop and a phone width) and says how
much of each is ink. Used by tests/stages/test_report.py, and by whoever changes the page's
layout, to look at it: the page must read well at both widths.

Chromium is Debian's `chromium` (or `chromium-browser`, `google-chrome`); none is a
dependency of rnnkit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

WIDTHS = (1280, 390)
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str | None:
    """The first Chromium on PATH, or None."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def screenshot(page: Path, target: Path, *, width: int, height: int = 2000, binary: str | None = None,
               timeout: float = 120.0) -> Path:
    """Render `page` at width x height and write a PNG to `target`."""
    binary = binary or browser()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install chromium)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    # --no-sandbox: root in a container has no user namespace for the sandbox.
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={target.parent / '.chromium-profile'}",
               f"--screenshot={target}", f"--window-size={width},{height}", Path(page).resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if not target.exists():
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-500:]}")
    shutil.rmtree(target.parent / ".chromium-profile", ignore_errors=True)
    return target


def ink(png: Path) -> tuple[float, int]:
    """(share of pixels that are not white, distinct colours) of a PNG: a blank page is (0, 1)."""
    import matplotlib.image as mpimg
    import numpy as np

    image = mpimg.imread(png)[..., :3]
    pixels = (image.reshape(-1, 3) * 255).round().astype(np.uint8)
    share = float((pixels < 245).any(axis=1).mean())
    colours = len(np.unique(pixels[:: max(1, len(pixels) // 200_000)], axis=0))
    return share, colours


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("report-shots"))
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args(argv)
    for page in args.pages:
        for width in WIDTHS:
            shot = screenshot(page, args.out / f"{page.stem}-{width}.png", width=width, height=args.height)
            share, colours = ink(shot)
            print(f"{shot}: {share:.1%} ink, {colours} colours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
