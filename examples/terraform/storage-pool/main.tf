# A storage pool on a fast disk, and a volume in it.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

variable "pool_path" {
  description = "Directory on the host for the pool; the agent creates it when missing."
  type        = string
  default     = "/srv/nvme/kvm"
}

resource "kvm_storage_pool" "fast" {
  name = "fast"
  path = var.pool_path
}

resource "kvm_volume" "scratch" {
  name     = "scratch.raw"
  pool     = kvm_storage_pool.fast.name
  format   = "raw"
  size_gib = 4
}

output "scratch_path" {
  value = kvm_volume.scratch.path
}
