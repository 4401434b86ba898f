#!/usr/bin/env bash
# Makes Debian's headless Chromium and ChromeDriver available for the operator
# page's browser test (tests/it/admin.rs): uses them if installed, else
# installs the packages chromium and chromium-driver (needs root or sudo).
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "browser: chromium and chromedriver present" >&2
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
echo "browser: installing chromium and chromium-driver from Debian's packages" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
