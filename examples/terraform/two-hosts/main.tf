# One configuration, two hypervisor hosts: each resource says which agent it lives on.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

variable "token" {
  type      = string
  sensitive = true
}

provider "kvm" {
  endpoint = "http://10.0.0.1:8680" # resources without a host go here
  token    = var.token
  hosts = {
    lab2 = "http://10.0.0.2:8680"
  }
}

data "kvm_host" "lab2" {
  host = "lab2"
}

resource "kvm_vm" "primary" {
  name  = "app-1"
  disks = { scsi0 = { size_gib = 4 } }
}

resource "kvm_vm" "secondary" {
  host  = "lab2"
  name  = "app-2"
  disks = { scsi0 = { size_gib = 4 } }
  kvm   = data.kvm_host.lab2.kvm_usable
}
