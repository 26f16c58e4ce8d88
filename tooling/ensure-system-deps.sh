#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium) through playwright-core; test tools
# never download a browser of their own. Install it when missing and we can (root + apt-get);
# otherwise say exactly what to run.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "tensorpeft: installing Debian's chromium for the browser tests (apt-get)…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "tensorpeft: the browser tests need Debian's Chromium: run 'sudo apt-get install -y chromium'" >&2
exit 1
