#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium) through playwright-core; test tools
# never download a browser of their own. WebGPU tests in Node use Dawn (npm `webgpu`) on Chromium's
# SwiftShader Vulkan driver, which needs libvulkan1. Install it when missing and we can (root + apt-get);
# otherwise say exactly what to run.
set -euo pipefail
have_libvulkan() { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; }
if [ -x /usr/bin/chromium ] && have_libvulkan; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "tensorpeft: installing Debian's chromium and libvulkan1 for the browser/WebGPU tests (apt-get)…" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libvulkan1 >/dev/null
  exit 0
fi
echo "tensorpeft: the browser and WebGPU tests need Debian's Chromium and libvulkan1: run 'sudo apt-get install -y chromium libvulkan1'" >&2
exit 1
