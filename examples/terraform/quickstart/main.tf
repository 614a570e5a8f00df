# Boots a small VM from a kernel and initrd on the host, with one qcow2 disk.
# The agent endpoint and token come from KVM_ENDPOINT and KVM_TOKEN (scripts/quickstart sets them).
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

variable "kernel" {
  description = "Absolute host path of the guest kernel."
  type        = string
}

variable "initrd" {
  description = "Absolute host path of the guest initrd."
  type        = string
}

resource "kvm_vm" "quickstart" {
  name        = "quickstart"
  description = "Made by scripts/quickstart"

  cpu    = { cores = 1 }
  memory = { size_mib = 256 }

  kernel  = var.kernel
  initrd  = var.initrd
  cmdline = "console=ttyS0"

  disks = {
    scsi0 = { size_gib = 1, format = "qcow2" }
  }

  # The busybox guest ignores ACPI power-off: stop it by force after 10 s on restarts and destroy.
  update_policy = { restart = "auto", shutdown_timeout_seconds = 10 }

  timeouts {
    create = "5m"
    delete = "5m"
  }
}

output "vm_id" {
  value = kvm_vm.quickstart.vm_id
}

output "console_endpoint" {
  value = kvm_vm.quickstart.console_endpoint
}

output "serial_log" {
  value = kvm_vm.quickstart.serial_log
}
