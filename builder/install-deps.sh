#!/usr/bin/env bash
# Debian packages rackboot needs on the server host.
#   install-deps.sh          what serving, building and `rackboot demo` use:
#                            the native addon's toolchain, apt/dpkg tools and
#                            debootstrap for `rackboot build`, QEMU with iPXE
#                            ROMs and OVMF (the demo's machine), iproute2
#   install-deps.sh --test   that, and the real clients, peers and reference
#                            servers the tests and benchmarks drive
#   install-deps.sh [--test] --list   print the package names, install nothing
set -euo pipefail

packages=(
  # npm install builds server/native (SO_BINDTODEVICE for DHCP) with node-gyp
  g++ make python3
  # `rackboot build`: apt-get download + dpkg-deb come with apt and dpkg
  ca-certificates cpio xz-utils gzip
  # `rackboot build --variant debian` (the default): the dom0's Debian tree, packed as a squashfs
  debootstrap squashfs-tools
  # `rackboot build` makes the hybrid CD/USB image with grub-mkrescue (BIOS and UEFI GRUB, xorriso, mtools for the EFI FAT image)
  xorriso mtools grub-common grub-pc-bin grub-efi-amd64-bin
  # machines for `rackboot demo` (and the end-to-end tests)
  qemu-system-x86 ipxe-qemu ovmf
  # the interface serve reads, and the demo's namespaces and taps
  iproute2
)

test_packages=(
  # the Debian runtime's boot test logs into dom0 with a key
  openssh-client
  # test hosts and peers
  busybox atftp tftp-hpa curl isc-dhcp-client
  # dhcpcd (the daemon alone: dhcpcd-base ships no service), run by the tests in their own namespaces
  dhcpcd-base
  # DHCP load (perfdhcp) and captures of what clients received, for the durable-lease test
  kea-admin tcpdump
  # `npm run bench:dhcp` runs kea-dhcp4 beside rackboot (installed with service starts denied, see below)
  kea-dhcp4-server
  # the site DHCP server beside `--dhcp proxy` in the proxyDHCP tests (the daemon only, no service)
  dnsmasq-base
  # `npm run bench:tftp` runs in.tftpd unpacked from tftpd-hpa's .deb (the package would start a service on port 69); it links libwrap
  libwrap0
  # builder tests check the initrd's modules.dep against depmod
  kmod
  # the status page is tested in headless Chromium (driven by playwright-core); openssl checks hash-password
  chromium openssl
  # the lease-locking test reads leases.sqlite with the sqlite3 CLI while the server runs
  sqlite3
  # `npm run bench:http`: wrk as the client, nginx as the reference (installed with service starts denied, started by the bench only)
  wrk nginx
  # the manual page (rackboot manpage) is checked with groff's warnings on
  groff-base
  # the package test: dpkg-shlibdeps finds the .deb's library dependencies; the
  # .deb is installed on a debootstrapped Debian 12 booted with systemd-nspawn
  dpkg-dev systemd-container
  # the shared-state tests start PostgreSQL 15 clusters of their own in temporary folders (initdb, postgres; psql comes with it)
  postgresql-15
  # the guest storage test runs an iSCSI target (tgtd, its own process in its own namespace; installed with service starts denied)
  tgt
  # BMCs: OpenIPMI's ipmi_sim is the BMC of the tests' machines; ipmitool is how rackboot speaks IPMI (the package recommends it)
  openipmi ipmitool
)

list=0
for arg in "$@"; do
  case "$arg" in
    --test) packages+=("${test_packages[@]}") ;;
    --list) list=1 ;;
    *) echo "install-deps: unknown argument $arg (want --test and/or --list)" >&2; exit 2 ;;
  esac
done
if [ "$list" = 1 ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them (sudo $0 $*)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages such as kea-dhcp4-server start their service when installed; deny every
# service start for this install (policy-rc.d exit 101) unless the host has its own policy.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# ... nor at boot: the benchmark runs kea-dhcp4 itself, in its own namespaces.
if [[ " ${missing[*]} " == *" kea-dhcp4-server "* ]]; then
  if command -v systemctl >/dev/null; then systemctl disable kea-dhcp4-server.service >/dev/null 2>&1 || true; fi
  update-rc.d kea-dhcp4-server disable >/dev/null 2>&1 || true
fi
if [[ " ${missing[*]} " == *" nginx "* ]]; then
  if command -v systemctl >/dev/null; then systemctl disable nginx.service >/dev/null 2>&1 || true; fi
  update-rc.d nginx disable >/dev/null 2>&1 || true
fi
if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
  if command -v systemctl >/dev/null; then systemctl disable postgresql.service >/dev/null 2>&1 || true; fi
  update-rc.d postgresql disable >/dev/null 2>&1 || true
fi
