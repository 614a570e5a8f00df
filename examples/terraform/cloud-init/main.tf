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

variable "image_sha256" {
  description = "sha256 of the image file; null skips the check."
  type        = string
  default     = null
}

variable "user_data" {
  type    = string
  default = <<-YAML
    #cloud-config
    package_update: true
    packages: [nginx]
  YAML
}

# Images without a boot loader (a bare root file system) boot their own kernel directly; cloud images leave these null.
variable "kernel" {
  type    = string
  default = null
}

variable "initrd" {
  type    = string
  default = null
}

variable "cmdline" {
  type    = string
  default = null
}

resource "kvm_network" "lab" {
  name    = "kvmci0"
  address = "192.168.60.1/24"
  dhcp    = { range_start = "192.168.60.100", range_end = "192.168.60.199" }
  dns     = { domain = "lab.internal" }
}

resource "kvm_image" "debian" {
  name     = "debian-12.qcow2"
  url      = var.image_url
  checksum = var.image_sha256
}

resource "kvm_vm" "web" {
  name    = "web-01"
  cpu     = { cores = 2 }
  memory  = { size_mib = 1024 }
  kernel  = var.kernel
  initrd  = var.initrd
  cmdline = var.cmdline
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
    user_data = var.user_data
    on_change = "reprovision"
  }
  # The image runs qemu-guest-agent: the agent shuts the guest down through it and reads its addresses.
  agent = { enabled = true }
  # The apply returns once net0 has its DHCP address (bounded; refresh never waits).
  wait_for_ip = { timeout_seconds = 600 }
}

output "ipv4" {
  value = kvm_vm.web.primary_ipv4
}

output "instance_id" {
  value = kvm_vm.web.cloud_init_instance_id
}

output "leases" {
  value = kvm_network.lab.lease_file
}
