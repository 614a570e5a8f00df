# A storage pool on a fast disk, and a volume in it.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

resource "kvm_storage_pool" "fast" {
  name = "fast"
  path = "/srv/nvme/kvm"
}

resource "kvm_volume" "scratch" {
  name     = "scratch.raw"
  pool     = kvm_storage_pool.fast.name
  format   = "raw"
  size_gib = 4
}
