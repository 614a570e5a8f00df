# A bridge on the host with two VMs on it.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

resource "kvm_network" "lab" {
  name    = "kvmlab0"
  address = "192.168.50.1/24"
  mtu     = 1500
}

resource "kvm_vm" "node" {
  for_each = toset(["node-a", "node-b"])

  name   = each.key
  memory = { size_mib = 512 }
  disks = {
    virtio0 = { size_gib = 4 }
  }
  network_interfaces = {
    net0 = { bridge = kvm_network.lab.name, model = "virtio" }
  }
}

output "macs" {
  value = { for name, vm in kvm_vm.node : name => vm.mac_addresses["net0"] }
}
