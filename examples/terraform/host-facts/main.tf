# What a host offers, and an existing VM looked up by name.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

data "kvm_host" "this" {}

data "kvm_vm" "web" {
  name = "web-01"
}

output "qemu" {
  value = data.kvm_host.this.qemu_version
}

output "web_status" {
  value = data.kvm_vm.web.status
}
