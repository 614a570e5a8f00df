# A VM that runs the QEMU guest agent. Terraform waits (bounded) for its IPv4 address after create and
# start, never on refresh; the agent shuts it down through the guest agent; a data source reads its
# addresses again later without waiting.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

variable "image_id" {
  description = "A kvm_image of a cloud image with qemu-guest-agent, as <pool>/<name>."
  type        = string
  default     = "default/debian-12.qcow2"
}

resource "kvm_vm" "app" {
  name   = "app-01"
  cpu    = { cores = 2 }
  memory = { size_mib = 1024 }
  disks = {
    virtio0 = { image_id = var.image_id, linked_clone = true }
  }
  network_interfaces = {
    net0 = { model = "virtio" }
  }

  agent       = { enabled = true }
  wait_for_ip = { timeout_seconds = 600, ipv4 = true }
}

data "kvm_vm_addresses" "app" {
  vm_id = kvm_vm.app.vm_id
}

output "primary_ipv4" {
  value = kvm_vm.app.primary_ipv4
}

output "addresses" {
  value = data.kvm_vm_addresses.app.ipv4_addresses
}
