# A cloud image imported once (checksum verified, decompressed, read-only), and a VM whose disk is
# a linked clone of it, grown to 20 GiB. Deleting the image is refused while the clone exists.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

variable "image_url" {
  type    = string
  default = "http://images.lab.example/debian-12-genericcloud-amd64.qcow2"
}

variable "image_sha256" {
  type    = string
  default = null
}

resource "kvm_image" "debian" {
  name     = "debian-12.qcow2"
  url      = var.image_url
  checksum = var.image_sha256
}

resource "kvm_vm" "web" {
  name = "web-01"
  cpu    = { cores = 2 }
  memory = { size_mib = 2048 }
  disks = {
    virtio0 = { image_id = kvm_image.debian.image_id, linked_clone = true, size_gib = 20 }
  }
  network_interfaces = {
    net0 = { model = "virtio" }
  }
}

output "image_format" {
  value = kvm_image.debian.format
}
