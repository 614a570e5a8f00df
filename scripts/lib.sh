# Shared by scripts/test and scripts/quickstart: idempotent set-up of a fresh Debian machine.
# shellcheck shell=bash

repo_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages the agent and the tests need on the host.
HOST_PACKAGES=(
  qemu-system-x86 qemu-utils ovmf iproute2 swtpm swtpm-tools genisoimage
  dnsmasq-base nftables busybox-static cpio gzip xz-utils zstd bzip2 curl ca-certificates util-linux procps pciutils
  lvm2 thin-provisioning-tools nfs-common
)

ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_dotnet() {
  command -v dotnet >/dev/null || { echo "The .NET 10 SDK is required (dotnet on PATH)." >&2; exit 1; }
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

# A tiny test guest: a Debian cloud kernel (extracted from its package, not installed) and a
# busybox initramfs whose /init prints a marker on the serial console. Cached by recipe hash.
ensure_test_guest() {
  local root; root=$(repo_root)
  local dir="$root/.work/guest"
  local recipe; recipe=$(sha256sum "$root/scripts/lib.sh" "$root/scripts/guest-init" | sha256sum | cut -c1-16)
  if [ -f "$dir/recipe" ] && [ "$(cat "$dir/recipe")" = "$recipe" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then
    echo "$dir"; return
  fi
  log "building the test guest (kernel + busybox initramfs) in $dir"
  rm -rf "$dir" && mkdir -p "$dir/pkg" "$dir/rootfs/bin"
  local kpkg; kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kpkg" ] || { apt-get update -qq; kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
  (cd "$dir/pkg" && apt-get download -qq "$kpkg" >/dev/null 2>&1) || { echo "could not download $kpkg" >&2; exit 1; }
  dpkg-deb -x "$dir"/pkg/*.deb "$dir/pkg/x"
  cp "$dir"/pkg/x/boot/vmlinuz-* "$dir/vmlinuz"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  # Virtio and SCSI drivers are modules in the cloud kernel: ship them, in load order, so the guest sees its disks and NICs.
  mkdir -p "$dir/rootfs/modules"
  local m i=0
  for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev virtio/virtio_pci_modern_dev virtio/virtio_pci \
           block/virtio_blk scsi/scsi_common scsi/scsi_mod scsi/sd_mod scsi/virtio_scsi; do
    i=$((i + 1))
    cp "$(find "$dir/pkg/x/lib/modules" -path "*/kernel/drivers/$m.ko*" | head -1)" "$dir/rootfs/modules/$(printf '%02d' $i)-$(basename "$m").ko"
  done
  cp "$root/scripts/guest-init" "$dir/rootfs/init" && chmod 755 "$dir/rootfs/init"
  (cd "$dir/rootfs" && find . | cpio -o -H newc --quiet | gzip -9 > "$dir/initrd.img")
  rm -rf "$dir/pkg" "$dir/rootfs"
  echo "$recipe" > "$dir/recipe"
  echo "$dir"
}

# The real Debian test guest (scripts/debian-guest: debootstrap with the cloud kernel, cloud-init, the QEMU
# guest agent and OpenSSH): disk.qcow2, vmlinuz, initrd.img and cmdline for direct kernel boot. Cached by a
# hash of its recipe; a lock keeps concurrent callers from building it twice. Prints its dir.
ensure_debian_guest() {
  local root; root=$(repo_root)
  local dir="${KVM_DEBIAN_GUEST_DIR:-$root/.work/debian-guest}"
  local recipe; recipe=$(sha256sum "$root/scripts/debian-guest" | cut -c1-16)
  mkdir -p "$(dirname "$dir")"
  (
    flock 9
    if [ -f "$dir/recipe" ] && [ "$(cat "$dir/recipe")" = "$recipe" ] && [ -s "$dir/disk.qcow2" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then
      exit 0
    fi
    ensure_packages debootstrap e2fsprogs qemu-utils
    log "building the Debian test guest in $dir (debootstrap; a few minutes, cached afterwards)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    local start=$SECONDS
    $sudo "$root/scripts/debian-guest" "$dir" >&2 || exit 1
    [ "$(id -u)" = 0 ] || $sudo chown -R "$(id -u):$(id -g)" "$dir"
    echo "$recipe" > "$dir/recipe"
    log "Debian test guest built in $((SECONDS - start)) s"
  ) 9>"$dir.lock" || exit 1
  echo "$dir"
}
