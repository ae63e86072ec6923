#!/usr/bin/env bash
# Installs the software Vulkan adapter (Mesa's lavapipe) where no GPU driver is wanted, at
# Mesa 24 or newer: Mesa 22 (Debian bookworm's own) runs our kernels 3–8× slower. On bookworm
# the newer Mesa comes from the bookworm-backports suite, whose entry is derived from the
# machine's own Debian source (its mirror, its keyring). Idempotent; run as root or with sudo.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

mesa_major() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/'; }
have=$(mesa_major || true)
if [ -n "$have" ] && [ "$have" -ge 24 ] && ldconfig -p | grep -q libvulkan.so.1; then
  echo "lavapipe: Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
  exit 0
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
target=()
if [ "$codename" = bookworm ]; then
  list=/etc/apt/sources.list.d/wgpu-mlp-backports.sources
  if [ ! -f "$list" ]; then
    # The first deb822 stanza or one-line entry that serves bookworm: its URI and keyring.
    uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    key=$(awk '/^URIs:/ {u=$2} /^Signed-By:/ {k=$2} /^Suites:/ && / bookworm( |$)/ && u {s=1} s && k {print k; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
      uri=$(awk '$1 == "deb" && $0 ~ / bookworm / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { echo "no Debian bookworm source found to derive bookworm-backports from" >&2; exit 1; }
    {
      echo "Types: deb"
      echo "URIs: $uri"
      echo "Suites: bookworm-backports"
      echo "Components: main"
      echo "Signed-By: ${key:-/usr/share/keyrings/debian-archive-keyring.gpg}"
    } | $SUDO tee "$list" >/dev/null
  fi
  target=(-t bookworm-backports)
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${target[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
echo "lavapipe: Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) installed"
