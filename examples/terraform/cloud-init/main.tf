# A cloud image on a lab network with DHCP and DNS from the agent's dnsmasq, provisioned by cloud-init:
# host name, a user with your SSH key, DHCP on net0 and your own cloud-config. The seed is an ISO the agent
# makes on the host; changing any cloud_init setting updates the VM in place (the seed is swapped live) and,
# with on_change = "reprovision", cloud-init runs again as on a first boot. user_data and the password are
# sensitive: plans show "(sensitive value)" and the agent never returns them in clear.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

variable "ssh_public_key" {
  type = string
}

variable "image_url" {
  type    = string
  default = "http://images.lab.example/debian-12-genericcloud-amd64.qcow2"
}

resource "kvm_network" "lab" {
  name    = "kvmci0"
  address = "192.168.60.1/24"
  dhcp    = { range_start = "192.168.60.100", range_end = "192.168.60.199" }
  dns     = { domain = "lab.internal" }
}

resource "kvm_image" "debian" {
  name = "debian-12.qcow2"
  url  = var.image_url
}

resource "kvm_vm" "web" {
  name   = "web-01"
  memory = { size_mib = 1024 }
  disks = {
    virtio0 = { image_id = kvm_image.debian.image_id, linked_clone = true, size_gib = 10 }
  }
  network_interfaces = {
    net0 = { bridge = kvm_network.lab.name }
  }
  cloud_init = {
    hostname  = "web-01"
    user      = { name = "debian", ssh_keys = [var.ssh_public_key] }
    ip_config = { net0 = { ipv4 = { address = "dhcp" } } }
    dns       = { domain = "lab.internal", servers = ["192.168.60.1"] }
    user_data = <<-YAML
      #cloud-config
      package_update: true
      packages: [nginx]
    YAML
    on_change = "reprovision"
  }
}

output "instance_id" {
  value = kvm_vm.web.cloud_init_instance_id
}

output "leases" {
  value = kvm_network.lab.lease_file
}
