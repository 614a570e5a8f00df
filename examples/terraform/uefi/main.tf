# A UEFI VM (OVMF) with its own EFI variable store, booting an installer ISO from a CD-ROM.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

resource "kvm_vm" "uefi" {
  name    = "uefi-01"
  machine = "q35"

  firmware = {
    type     = "uefi"
    efi_vars = { template = "4m" }
  }

  cpu    = { sockets = 1, cores = 2, model = "x86-64-v2-AES" }
  memory = { size_mib = 2048 }

  disks = {
    virtio0 = { size_gib = 20, discard = true, iothread = true }
  }
  cdroms = {
    ide2 = { volume_id = "default/installer.iso" }
  }
  boot_order = ["virtio0", "ide2"]

  network_interfaces = {
    net0 = { model = "virtio" }
  }

  update_policy = { restart = "auto", shutdown_timeout_seconds = 60 }
}
