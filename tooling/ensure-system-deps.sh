#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium) through playwright-core; test tools
# never download a browser of their own. WebGPU tests in Node use Dawn (npm `webgpu`) on Chromium's
# SwiftShader Vulkan driver, which needs libvulkan1; the q4f16 WebGPU check (float16 kernels need the
# device feature shader-f16, which SwiftShader lacks) runs Dawn on Mesa's lavapipe ≥ 23, on Debian 12
# from bookworm-backports (Mesa 25; bookworm's own 22.3 is too old for Dawn). Install what is missing
# when we can (root + apt-get); otherwise say exactly what to run.
set -euo pipefail
LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.json # the name Mesa ≥ 23 gives it (22.3: lvp_icd.x86_64.json)
have_libvulkan() { ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; } # not grep -q: under pipefail its early exit fails ldconfig (SIGPIPE)
bookworm() { grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; }
if [ -x /usr/bin/chromium ] && have_libvulkan && [ -e "$LVP_ICD" ]; then exit 0; fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "tensorpeft: installing Debian's chromium, libvulkan1 and Mesa's lavapipe for the browser/WebGPU tests (apt-get)…" >&2
  mesa=(mesa-vulkan-drivers)
  if bookworm; then
    [ -e /etc/apt/sources.list.d/tensorpeft-backports.sources ] ||
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >/etc/apt/sources.list.d/tensorpeft-backports.sources
    mesa=(-t bookworm-backports mesa-vulkan-drivers)
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libvulkan1 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${mesa[@]}" >/dev/null
  exit 0
fi
echo "tensorpeft: the browser and WebGPU tests need Debian's Chromium, libvulkan1 and Mesa's lavapipe ≥ 23: run 'sudo apt-get install -y chromium libvulkan1' and install mesa-vulkan-drivers ≥ 23 (Debian 12: from bookworm-backports, 'sudo apt-get install -y -t bookworm-backports mesa-vulkan-drivers')" >&2
exit 1
