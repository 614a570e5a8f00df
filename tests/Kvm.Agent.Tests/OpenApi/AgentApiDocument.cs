using System.Text.Json.Nodes;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Agent.Tests.OpenApi;

/// <summary>
/// Builds the agent's OpenAPI 3.1 document: operations from the table below, schemas projected from the model's
/// declarations (the same ones validation and the plugin schemas use). The committed docs/agent-api.openapi.json
/// must equal this output; <c>UPDATE_GOLDEN=1</c> rewrites it.
/// </summary>
public static class AgentApiDocument
{
    private sealed record Operation(string Method, string Path, string Id, string Summary, string? Request = null, string? Response = null,
        int Success = 200, string[]? Query = null, string[]? Headers = null, int[]? Problems = null, string? Tag = null);

    private static readonly Operation[] Operations =
    [
        new("get", "/healthz", "health", "Liveness probe; needs no token.", Response: "string", Tag: "host"),
        new("get", "/v1/host", "getHost", "Facts about the host: QEMU, KVM, firmware, capacity.", Response: "HostInfo", Tag: "host"),
        new("get", "/v1/host/devices", "getHostDevices", "The host's PCI functions and USB devices, read from sysfs when asked (the candidates for pci_devices and usb_devices).", Response: "HostDeviceInventory", Tag: "host"),
        new("get", "/v1/vms", "listVms", "Every VM, served from memory.", Response: "Vm[]", Tag: "vms"),
        new("post", "/v1/vms", "createVm", "Create a VM (vm_id allocated when unset) and start it unless power_state says otherwise. A repeated Idempotency-Key with the same body returns the same VM (200).",
            "VmSpec", "Vm", 201, Headers: ["Idempotency-Key"], Problems: [400, 409, 413, 422, 507], Tag: "vms"),
        new("get", "/v1/vms/{vm_id}", "getVm", "One VM, with its ETag.", Response: "Vm", Problems: [404], Tag: "vms"),
        new("put", "/v1/vms/{vm_id}", "updateVm", "Replace the spec. Live changes apply to a running VM, the rest stay pending until its next start; create-only changes are 409 requires-replacement; a stale If-Match is 412. The power state is enforced.",
            "VmSpec", "VmUpdateResult", Query: ["timeout"], Headers: ["If-Match"], Problems: [400, 404, 409, 412, 413, 422], Tag: "vms"),
        new("delete", "/v1/vms/{vm_id}", "deleteVm", "Delete a VM with its inline disks, EFI variable store, run directory, taps and logs. A running VM needs stop=true (graceful, bounded, then forced) or force=true; a protected VM is never deleted.",
            Success: 204, Query: ["force", "stop", "timeout"], Problems: [404, 409], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/start", "startVm", "Start the VM (already running is success).", Response: "Vm", Problems: [404, 409, 422], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/stop", "stopVm", "Stop QEMU now: QMP quit, then SIGKILL (already stopped is success).", Response: "Vm", Problems: [404, 409], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/shutdown", "shutdownVm", "ACPI power button; wait up to timeout seconds (default 60), then stop when force (default true).", Response: "Vm", Query: ["timeout", "force"], Problems: [404, 409], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/reboot", "rebootVm", "Shutdown (bounded, then forced) and start again; pending changes take effect.", Response: "Vm", Query: ["timeout"], Problems: [404, 409], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/reset", "resetVm", "Hard reset.", Response: "Vm", Problems: [404, 409], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/suspend", "suspendVm", "Pause the guest.", Response: "Vm", Problems: [404, 409], Tag: "vms"),
        new("post", "/v1/vms/{vm_id}/resume", "resumeVm", "Continue a paused guest.", Response: "Vm", Problems: [404, 409], Tag: "vms"),
        new("get", "/v1/vms/{vm_id}/addresses", "getVmAddresses", "The VM's IP addresses per network interface slot from the QEMU guest agent, the DHCP leases of managed networks and the host's neighbour table, matched by MAC. Never waits: each source is bounded by a short timeout and reported in sources.",
            Response: "VmAddresses", Problems: [404], Tag: "vms"),
        new("get", "/v1/vms/{vm_id}/agent", "getVmGuestAgent", "What the VM's QEMU guest agent says about the guest (guest-info, host name, OS). 409 when the VM is not running, has no guest agent channel, or the guest agent does not answer within a few seconds.",
            Response: "GuestAgentInfo", Problems: [404, 409], Tag: "vms"),
        new("get", "/v1/vms/{vm_id}/snapshots", "listSnapshots", "The VM's snapshots, oldest first.", Response: "Snapshot[]", Problems: [404], Tag: "snapshots"),
        new("post", "/v1/vms/{vm_id}/snapshots", "createSnapshot", "Take a snapshot: internal qcow2 snapshots of every writable disk (QMP while the VM runs, qemu-img while it is stopped), with the memory state when include_memory. The same name and kind again returns the existing one (200). A raw or vmdk disk refuses it (409, naming the disk).",
            "SnapshotSpec", "Snapshot", 201, Problems: [400, 404, 409, 422, 507], Tag: "snapshots"),
        new("get", "/v1/vms/{vm_id}/snapshots/{name}", "getSnapshot", "One snapshot.", Response: "Snapshot", Problems: [404], Tag: "snapshots"),
        new("put", "/v1/vms/{vm_id}/snapshots/{name}", "updateSnapshot", "Change the description; name and include_memory are create-only (409 requires-replacement).",
            "SnapshotSpec", "Snapshot", Problems: [400, 404, 409, 422], Tag: "snapshots"),
        new("delete", "/v1/vms/{vm_id}/snapshots/{name}", "deleteSnapshot", "Delete a snapshot from every image that holds it (one that does not exist is success).", Success: 204, Problems: [404, 409], Tag: "snapshots"),
        new("post", "/v1/vms/{vm_id}/snapshots/{name}/rollback", "rollbackSnapshot", "Return the VM to the snapshot. With memory: QEMU loads it (starting the VM first when stopped) and runs on from the saved moment. Disks only: the VM is stopped, its images reverted, and started again when start (default: when it was running).",
            Response: "Vm", Query: ["start"], Problems: [404, 409], Tag: "snapshots"),
        new("post", "/v1/vms/{vm_id}/migration/prepare", "prepareMigration", "Source side of a migration: check the VM can move (no TPM, passthrough, shared directories, host devices, volumes, linked clones or snapshots), lock it until finish or cancel, and describe what the target must make (the stored spec, inline disk sizes, EFI store size, QEMU version).",
            "MigrationPrepareRequest", "MigrationPlan", Problems: [404, 409, 422], Tag: "migration"),
        new("post", "/v1/vms/{vm_id}/migration/send", "sendMigration", "Copy the prepared VM to the target: live (disks mirrored over NBD, then QEMU migrates memory; the VM ends paused here) or cold (qemu-img convert into the target's NBD exports; a running VM with online=false is shut down first). Bounded by timeout_seconds (default 1 h); a failure ends the block jobs.",
            "MigrationSendRequest", "MigrationSendResult", Problems: [400, 404, 409, 422, 500], Tag: "migration"),
        new("post", "/v1/vms/{vm_id}/migration/finish", "finishMigration", "After the target completed: delete the VM here (its paused QEMU, definition, inline disks, EFI store) and release the lock.", Success: 204, Problems: [404, 409], Tag: "migration"),
        new("post", "/v1/vms/{vm_id}/migration/cancel", "cancelMigration", "Give the VM back: end block jobs, resume it (or start it again) as it was, release the lock. Nothing to cancel is success.", Success: 204, Problems: [404], Tag: "migration"),
        new("post", "/v1/migrations/incoming", "createIncomingMigration", "Target side: make the VM (same vm_id) locked in an incoming state with empty disks of the source's sizes, and export them over NBD on the address this request arrived on (live: QEMU started with -incoming defer; cold: a qemu-storage-daemon). A failure leaves nothing behind.",
            "MigrationPlan", "IncomingMigration", 201, Problems: [400, 409, 422, 500], Tag: "migration"),
        new("post", "/v1/migrations/incoming/{vm_id}/complete", "completeIncomingMigration", "The source has sent everything: stop the exports and let the VM run (live), or start it when it ran before (cold); it is an ordinary VM from now on.",
            Response: "Vm", Problems: [404, 409], Tag: "migration"),
        new("delete", "/v1/migrations/incoming/{vm_id}", "abortIncomingMigration", "Remove the incoming VM and everything made for it (QEMU or storage daemon, disks, EFI store, definition). Nothing to abort is success.", Success: 204, Tag: "migration"),
        new("get", "/v1/volumes", "listVolumes", "Every volume of every pool.", Response: "Volume[]", Tag: "storage"),
        new("post", "/v1/volumes", "createVolume", "Create a volume.", "VolumeSpec", "Volume", 201, Headers: ["Idempotency-Key"], Problems: [400, 409, 422, 507], Tag: "storage"),
        new("get", "/v1/volumes/{pool}/{name}", "getVolume", "One volume.", Response: "Volume", Problems: [404], Tag: "storage"),
        new("put", "/v1/volumes/{pool}/{name}", "updateVolume", "Grow a volume (live while a running VM uses it).", "VolumeSpec", "Volume", Headers: ["If-Match"], Problems: [404, 409, 412, 422], Tag: "storage"),
        new("delete", "/v1/volumes/{pool}/{name}", "deleteVolume", "Delete a volume no VM uses.", Success: 204, Problems: [404, 409], Tag: "storage"),
        new("get", "/v1/images", "listImages", "Every image of every pool (or of ?pool=).", Response: "Image[]", Query: ["pool"], Problems: [404, 422], Tag: "images"),
        new("post", "/v1/images", "createImage", "Import an image from an http(s) URL or a host file: streamed, checksum-verified, decompressed, format detected, converted when asked, stored read-only. Runs within the request; a failure leaves nothing behind.",
            "ImageSpec", "Image", 201, Problems: [400, 409, 422, 500, 507], Tag: "images"),
        new("get", "/v1/images/{pool}/{name}", "getImage", "One image.", Response: "Image", Problems: [404, 422], Tag: "images"),
        new("delete", "/v1/images/{pool}/{name}", "deleteImage", "Delete an image no linked clone uses (409 otherwise).", Success: 204, Problems: [404, 409, 422], Tag: "images"),
        new("get", "/v1/storage-pools", "listStoragePools", "Every storage pool.", Response: "StoragePool[]", Tag: "storage"),
        new("post", "/v1/storage-pools", "createStoragePool", "Create a storage pool.", "StoragePoolSpec", "StoragePool", 201, Problems: [400, 409, 422], Tag: "storage"),
        new("get", "/v1/storage-pools/{name}", "getStoragePool", "One storage pool.", Response: "StoragePool", Problems: [404], Tag: "storage"),
        new("delete", "/v1/storage-pools/{name}", "deleteStoragePool", "Delete an empty storage pool.", Success: 204, Problems: [404, 409], Tag: "storage"),
        new("get", "/v1/networks", "listNetworks", "Every network.", Response: "Network[]", Tag: "networks"),
        new("post", "/v1/networks", "createNetwork", "Create or adopt a bridge.", "NetworkSpec", "Network", 201, Problems: [400, 409, 422], Tag: "networks"),
        new("get", "/v1/networks/{name}", "getNetwork", "One network.", Response: "Network", Problems: [404], Tag: "networks"),
        new("put", "/v1/networks/{name}", "updateNetwork", "Change a network's live settings.", "NetworkSpec", "Network", Headers: ["If-Match"], Problems: [404, 409, 412, 422], Tag: "networks"),
        new("delete", "/v1/networks/{name}", "deleteNetwork", "Delete a network no VM uses (an adopted bridge is only forgotten).", Success: 204, Problems: [404, 409], Tag: "networks"),
    ];

    private static readonly Dictionary<string, (string Type, string Description)> Parameters = new()
    {
        ["vm_id"] = ("integer", "Numeric VM ID."),
        ["pool"] = ("string", "Storage pool name."),
        ["name"] = ("string", "Resource name."),
        ["timeout"] = ("number", "Seconds to wait for a graceful shutdown (0–3600, default 60)."),
        ["force"] = ("boolean", "shutdown: stop after the timeout (default true); delete: stop a running VM at once."),
        ["start"] = ("boolean", "rollback: run the VM afterwards (default: as it was, or as the memory snapshot was)."),
        ["stop"] = ("boolean", "delete: shut a running VM down (bounded by timeout, then forced) before deleting it."),
        ["Idempotency-Key"] = ("string", "Makes a create safe to retry: the same key with the same body returns the same resource; with another body, 422."),
        ["If-Match"] = ("string", "The ETag the change is based on; a stale one is refused with 412."),
    };

    /// <summary>The document as indented JSON with a trailing newline.</summary>
    public static string Build()
    {
        var paths = new JsonObject();
        foreach (var op in Operations)
        {
            var item = paths[op.Path] as JsonObject ?? new JsonObject();
            paths[op.Path] = item;
            item[op.Method] = BuildOperation(op);
        }
        var schemas = new JsonObject();
        foreach (var type in new[] { typeof(HostInfo), typeof(HostDeviceInventory), typeof(VmSpec), typeof(Vm), typeof(VolumeSpec), typeof(Volume), typeof(ImageSpec), typeof(Image), typeof(StoragePoolSpec), typeof(StoragePool), typeof(NetworkSpec), typeof(Network), typeof(VmAddresses), typeof(SnapshotSpec), typeof(Snapshot) })
            AddObject(schemas, Schemas.For(type), type.Name);
        schemas["VmUpdateResult"] = Obj(("vm", Ref("Vm")), ("changes", new JsonObject { ["type"] = "array", ["items"] = Ref("AppliedChange") }));
        schemas["AppliedChange"] = Obj(("attribute", Str("Attribute path, e.g. disks[\"scsi0\"].size_gib.")),
            ("outcome", new JsonObject { ["type"] = "string", ["enum"] = new JsonArray("live", "pending", "stored") }));
        schemas["GuestAgentInfo"] = Obj(("vm_id", new JsonObject { ["type"] = "integer" }), ("agent_version", Str("Version of qemu-guest-agent.")),
            ("hostname", Str("The guest's host name.")), ("os_name", Str("Operating system (pretty name).")), ("os_version", Str("OS version id.")),
            ("kernel_release", Str("Kernel release.")), ("supported_commands", new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" } }));
        static JsonObject Int() => new() { ["type"] = "integer" };
        schemas["MigrationPrepareRequest"] = Obj(("online", new JsonObject { ["type"] = "boolean", ["default"] = true, ["description"] = "Migrate a running VM live; false: shut it down and copy it cold." }));
        schemas["MigrationDisk"] = Obj(("format", Str("Image format: qcow2, raw or vmdk.")), ("virtual_size", Int()));
        schemas["MigrationPlan"] = Obj(("vm_id", Int()), ("spec", Ref("VmSpec")), ("online", new JsonObject { ["type"] = "boolean" }),
            ("disks", new JsonObject { ["type"] = "object", ["additionalProperties"] = Ref("MigrationDisk") }), ("efi_vars_size", Int()),
            ("qemu_version", Str("The source's QEMU version; a live migration needs the same on the target.")), ("start_after", new JsonObject { ["type"] = "boolean" }));
        schemas["IncomingMigration"] = Obj(("vm_id", Int()), ("address", Str("Where the target listens (the address the request reached).")),
            ("migration_port", Int()), ("nbd_port", Int()),
            ("exports", new JsonObject { ["type"] = "object", ["additionalProperties"] = new JsonObject { ["type"] = "string" } }), ("online", new JsonObject { ["type"] = "boolean" }));
        schemas["MigrationSendRequest"] = Obj(("target", Ref("IncomingMigration")), ("timeout_seconds", new JsonObject { ["type"] = "number" }));
        schemas["MigrationSendResult"] = Obj(("disk_bytes", Int()), ("ram_bytes", Int()), ("downtime_ms", Int()));
        schemas["ProblemError"] = Obj(("attribute", Str("Attribute path the error concerns (empty: the request).")), ("detail", Str("What is wrong.")));
        schemas["Problem"] = Obj(("type", Str("Stable problem type URI, e.g. https://kvm.dev/problems/validation.")), ("title", Str("Short summary.")),
            ("status", new JsonObject { ["type"] = "integer" }), ("detail", Str("What happened, for people.")), ("instance", Str("The request path.")),
            ("errors", new JsonObject { ["type"] = "array", ["items"] = Ref("ProblemError") }));

        var document = new JsonObject
        {
            ["openapi"] = "3.1.0",
            ["info"] = new JsonObject
            {
                ["title"] = "kvm-agent API",
                ["version"] = "1",
                ["description"] = "The host agent of the kvm Terraform and Pulumi providers. JSON is snake_case; errors are RFC 9457 problem details. Everything under /v1/ needs Authorization: Bearer <token>.",
            },
            ["security"] = new JsonArray(new JsonObject { ["bearer"] = new JsonArray() }),
            ["paths"] = paths,
            ["components"] = new JsonObject
            {
                ["securitySchemes"] = new JsonObject { ["bearer"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer" } },
                ["schemas"] = schemas,
            },
        };
        return document.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    private static JsonObject BuildOperation(Operation op)
    {
        var parameters = new JsonArray();
        foreach (var name in System.Text.RegularExpressions.Regex.Matches(op.Path, "\\{([^}]+)\\}").Select(m => m.Groups[1].Value))
            parameters.Add(Parameter(name, "path", required: true));
        foreach (var name in op.Query ?? [])
            parameters.Add(Parameter(name, "query", required: false));
        foreach (var name in op.Headers ?? [])
            parameters.Add(Parameter(name, "header", required: false));
        var responses = new JsonObject();
        var success = new JsonObject { ["description"] = op.Success == 204 ? "Done." : "The resource, read back." };
        if (op.Response is { } response)
            success["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = SchemaRef(response) } };
        responses[op.Success.ToString(System.Globalization.CultureInfo.InvariantCulture)] = success;
        if (op.Path.StartsWith("/v1/", StringComparison.Ordinal))
            responses["401"] = ProblemResponse("Missing or wrong bearer token.");
        foreach (var status in op.Problems ?? [])
            responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = ProblemResponse(status switch
            {
                400 => "Malformed body (syntax, types, unknown properties).",
                404 => "No such resource.",
                409 => "Conflict: name or ID taken, busy (Retry-After), protected, invalid state, or requires replacement.",
                412 => "Stale If-Match.",
                413 => "Body too large.",
                422 => "Invalid settings, with attribute paths; admission refused.",
                507 => "No space left on the device.",
                _ => "Error.",
            });
        responses["500"] = ProblemResponse("Unexpected failure (no internals disclosed).");
        var operation = new JsonObject { ["operationId"] = op.Id, ["summary"] = op.Summary, ["tags"] = new JsonArray(op.Tag) };
        if (op.Path == "/healthz")
            operation["security"] = new JsonArray();
        if (parameters.Count > 0)
            operation["parameters"] = parameters;
        if (op.Request is { } request)
            operation["requestBody"] = new JsonObject { ["required"] = true, ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = Ref(request) } } };
        operation["responses"] = responses;
        return operation;
    }

    private static JsonObject Parameter(string name, string location, bool required) => new()
    {
        ["name"] = name,
        ["in"] = location,
        ["required"] = required,
        ["description"] = Parameters[name].Description,
        ["schema"] = new JsonObject { ["type"] = Parameters[name].Type },
    };

    private static JsonObject ProblemResponse(string description) => new()
    {
        ["description"] = description,
        ["content"] = new JsonObject { ["application/problem+json"] = new JsonObject { ["schema"] = Ref("Problem") } },
    };

    private static JsonObject SchemaRef(string name) => name switch
    {
        "string" => new JsonObject { ["type"] = "string" },
        _ when name.EndsWith("[]", StringComparison.Ordinal) => new JsonObject { ["type"] = "array", ["items"] = Ref(name[..^2]) },
        _ => Ref(name),
    };

    private static JsonObject Ref(string name) => new() { ["$ref"] = "#/components/schemas/" + name };

    private static JsonObject Str(string description) => new() { ["type"] = "string", ["description"] = description };

    private static JsonObject Obj(params (string Name, JsonObject Schema)[] properties)
    {
        var props = new JsonObject();
        foreach (var (name, schema) in properties)
            props[name] = schema;
        return new JsonObject { ["type"] = "object", ["properties"] = props };
    }

    private static void AddObject(JsonObject schemas, ObjectSchema schema, string name)
    {
        if (schemas.ContainsKey(name))
            return;
        var properties = new JsonObject();
        var required = new JsonArray();
        schemas[name] = new JsonObject { ["type"] = "object" };
        foreach (var attribute in schema.Attributes)
        {
            properties[attribute.Name] = Property(schemas, attribute.Type, attribute.Setting);
            if (attribute.Setting.Required)
                required.Add(attribute.Name);
        }
        var node = (JsonObject)schemas[name]!;
        node["properties"] = properties;
        if (required.Count > 0)
            node["required"] = required;
        node["additionalProperties"] = false;
    }

    private static JsonObject Property(JsonObject schemas, SchemaType type, SettingAttribute setting)
    {
        var node = Value(schemas, type, setting);
        if (type.Kind != ValueKind.Object)
            node["description"] = setting.Description;
        if (setting.Default is { } d)
            node["default"] = JsonValue.Create(d is string s ? s : d) is { } v ? v.DeepClone() : null;
        if (setting.ReadOnly)
            node["readOnly"] = true;
        return node;
    }

    private static JsonObject Value(JsonObject schemas, SchemaType type, SettingAttribute setting)
    {
        switch (type.Kind)
        {
            case ValueKind.Object:
                var name = type.Object!.ClrType.Name;
                AddObject(schemas, type.Object, name);
                return new JsonObject { ["allOf"] = new JsonArray(Ref(name)), ["description"] = setting.Description };
            case ValueKind.List or ValueKind.Set:
                var list = new JsonObject { ["type"] = "array", ["items"] = Element(schemas, type.Element!, setting) };
                if (type.Kind == ValueKind.Set)
                    list["uniqueItems"] = true;
                return list;
            case ValueKind.Map:
                var map = new JsonObject { ["type"] = "object", ["additionalProperties"] = Element(schemas, type.Element!, setting) };
                if (setting.KeyPattern is { } keys)
                    map["propertyNames"] = new JsonObject { ["pattern"] = $"^(?:{keys})$" };
                return map;
            default:
                return Primitive(type, setting);
        }
    }

    private static JsonObject Element(JsonObject schemas, SchemaType type, SettingAttribute setting) =>
        type.Kind == ValueKind.Object
            ? (AddObjectAndRef(schemas, type.Object!))
            : Primitive(type, setting);

    private static JsonObject AddObjectAndRef(JsonObject schemas, ObjectSchema schema)
    {
        AddObject(schemas, schema, schema.ClrType.Name);
        return Ref(schema.ClrType.Name);
    }

    private static JsonObject Primitive(SchemaType type, SettingAttribute setting)
    {
        var node = new JsonObject
        {
            ["type"] = type.Kind switch { ValueKind.Integer => "integer", ValueKind.Number => "number", ValueKind.Bool => "boolean", _ => "string" },
        };
        if (setting.OneOf is { } values)
            node["enum"] = new JsonArray([.. values.Select(v => (JsonNode)v)]);
        if (setting.Pattern is { } pattern)
            node["pattern"] = $"^(?:{pattern})$";
        if (setting.MaxLength > 0)
            node["maxLength"] = setting.MaxLength;
        if (!double.IsNaN(setting.Min))
            node["minimum"] = setting.Min;
        if (!double.IsNaN(setting.Max))
            node["maximum"] = setting.Max;
        return node;
    }
}
