# A golden template, two linked clones of it, and a snapshot of each clone (with memory) before an upgrade.
terraform {
  required_providers {
    kvm = { source = "kvm/kvm" }
  }
}

provider "kvm" {}

resource "kvm_vm" "golden" {
  name     = "golden"
  template = true # never started; its disks are read-only bases for clones
  memory   = { size_mib = 512 }
  disks    = { scsi0 = { size_gib = 4 } }
}

resource "kvm_vm" "web" {
  for_each = toset(["web-01", "web-02"])
  name     = each.key
  memory   = { size_mib = 512 }
  disks    = { scsi0 = { size_gib = 4 } }
  # Only disk content comes from the template (linked: qcow2 overlays); every other setting comes from here.
  clone = { source_vm_id = kvm_vm.golden.vm_id }
  # Bound the graceful shutdown of updates and destroy (these disks hold no OS that would answer ACPI).
  update_policy = { shutdown_timeout_seconds = 10 }
}

resource "kvm_snapshot" "before_upgrade" {
  for_each       = kvm_vm.web
  vm_id          = each.value.vm_id
  name           = "before-upgrade"
  description    = "taken by terraform before the upgrade"
  include_memory = true
}

output "snapshots" {
  value = [for s in kvm_snapshot.before_upgrade : s.snapshot_id]
}
