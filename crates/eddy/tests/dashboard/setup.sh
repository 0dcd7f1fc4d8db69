#!/usr/bin/env bash
# Installs what crates/eddy/tests/dashboard.rs drives: Debian's Chromium and the Playwright
# Python package (its own browser download does not work here: it runs /usr/bin/chromium).
# Safe to run again.
set -euo pipefail
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq chromium
fi
if ! python3 -c 'import playwright.sync_api' 2>/dev/null; then
    # Debian's system Python refuses global installs (PEP 668) unless told.
    python3 -m pip install --quiet --disable-pip-version-check 'playwright>=1.50,<2' \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'playwright>=1.50,<2'
fi
