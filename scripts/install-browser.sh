#!/usr/bin/env bash
# Install Debian's Chromium for the UI tests (Playwright drives it through executable_path,
# because `playwright install` downloads browsers and that is not possible everywhere).
# Idempotent. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "[install-browser] chromium already installed: $(command -v chromium || command -v chromium-browser)"
  exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[install-browser] installing Debian's chromium"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
chromium --version
