# A bridge on the host with two VMs on it, DHCP and DNS served by the agent's dnsmasq (bound to the
# bridge only), and a fixed address for node-a by its MAC.
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
  dhcp = {
    range_start   = "192.168.50.100"
    range_end     = "192.168.50.199"
    static_leases = { "bc:24:11:50:00:0a" = { ip = "192.168.50.10", hostname = "node-a" } }
  }
  dns = { domain = "lab.internal" }
}

resource "kvm_vm" "node" {
  for_each = toset(["node-a", "node-b"])

  name   = each.key
  memory = { size_mib = 512 }
  disks = {
    virtio0 = { size_gib = 4 }
  }
  network_interfaces = {
    net0 = { bridge = kvm_network.lab.name, model = "virtio", mac = each.key == "node-a" ? "bc:24:11:50:00:0a" : null }
  }
}

output "macs" {
  value = { for name, vm in kvm_vm.node : name => vm.mac_addresses["net0"] }
}
