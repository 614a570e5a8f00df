# A VM with an inline system disk and a standalone data volume that survives the VM.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

resource "kvm_volume" "data" {
  name     = "db-data.qcow2"
  pool     = "default"
  size_gib = 10
}

resource "kvm_vm" "db" {
  name = "db-01"

  cpu    = { cores = 2 }
  memory = { size_mib = 2048 }

  scsi_controller = "virtio-scsi-single"
  disks = {
    scsi0 = { size_gib = 8, cache = "none", iothread = true }
    scsi1 = { volume_id = kvm_volume.data.volume_id, discard = true }
    sata0 = { size_gib = 2, format = "raw", serial = "scratch" }
  }
  boot_order = ["scsi0"]
}

output "data_volume" {
  value = kvm_volume.data.volume_id
}
