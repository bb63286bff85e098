#!/usr/bin/env bash
# Debian packages rackboot needs on the server host, for the demo and the tests:
# QEMU with iPXE ROMs and OVMF (machines to boot), iproute2 (namespaces, taps),
# apt/dpkg tools for `rackboot build`, and the real clients the tests drive.
set -euo pipefail

packages=(
  # npm install builds server/native (SO_BINDTODEVICE for DHCP) with node-gyp
  g++ make python3
  # `rackboot build`: apt-get download + dpkg-deb come with apt and dpkg
  ca-certificates cpio xz-utils gzip
  # machines for `rackboot demo` and the end-to-end tests
  qemu-system-x86 ipxe-qemu ovmf
  # test hosts and peers
  iproute2 busybox atftp tftp-hpa curl isc-dhcp-client
  # DHCP load (perfdhcp) and captures of what clients received, for the durable-lease test
  kea-admin tcpdump
  # the site DHCP server beside `--dhcp proxy` in the proxyDHCP tests (the daemon only, no service)
  dnsmasq-base
  # `npm run bench:tftp` runs in.tftpd unpacked from tftpd-hpa's .deb (the package would start a service on port 69); it links libwrap
  libwrap0
  # builder tests check the initrd's modules.dep against depmod
  kmod
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (sudo $0)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
