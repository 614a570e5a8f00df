using System.CommandLine;
using Kvm.Cli.Options;
using Kvm.Cli.Output;
using Kvm.Model;
using Kvm.Model.Schema;

namespace Kvm.Cli.Commands;

/// <summary>VM snapshots: Proxmox's <c>qm listsnapshot</c>, <c>qm snapshot</c>, <c>qm delsnapshot</c> and <c>qm rollback</c>.</summary>
public static class SnapshotCommands
{
    // Saving or loading memory of a big VM takes a while (and longer under TCG).
    private static readonly TimeSpan Slow = TimeSpan.FromMinutes(10);

    /// <summary><c>snapshots ID</c> (list) with create, delete, rollback.</summary>
    public static Command Snapshots(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var vmId = VmCommands.VmId(cli);
        var command = cli.Examples(new Command("snapshots", "List a VM's snapshots; see the subcommands to take, delete and roll back.") { vmId, output },
            "kvmctl snapshots 100", "kvmctl snapshots create 100 before-upgrade --memory", "kvmctl snapshots rollback 100 before-upgrade", "kvmctl snapshots delete 100 before-upgrade");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var snapshots = await client.ListSnapshotsAsync(parsed.GetValue(vmId), token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, snapshots.ToList(), format);
                return ExitCodes.Ok;
            }
            var table = new Table("NAME", "PARENT", "TAKEN", "VM", "MEMORY", "ALSO", "DESCRIPTION");
            foreach (var s in snapshots)
                table.Add(s.Name ?? "", s.Parent ?? "", s.CreatedAt ?? "", s.VmStatus ?? "", s.IncludeMemory == true ? Formats.Bytes(s.VmStateBytes) : "",
                    string.Join(",", new[] { s.TpmState is { } tpm ? "tpm-" + tpm : null, s.EfiVars == true ? "efivars" : null }.OfType<string>()), s.Description ?? "");
            if (table.Count == 0)
                cli.Err.WriteLine($"VM {parsed.GetValue(vmId)} has no snapshots. Take one: kvmctl snapshots create {parsed.GetValue(vmId)} NAME");
            else
                table.Write(cli.Out, Terminal.ColorOut);
            return ExitCodes.Ok;
        }, ct));

        var createId = VmCommands.VmId(cli);
        var createName = new Argument<string>("NAME") { Description = "Snapshot name (a letter, then letters, digits, '_' or '-')." };
        var memory = new Option<bool>("--memory", "--vmstate") { Description = "Save the running VM's memory too (qm snapshot --vmstate)." };
        var description = new Option<string?>("--description") { Description = "Free text." };
        var create = cli.Examples(new Command("create", "Take a snapshot of every writable disk (and the memory with --memory).") { createId, createName, memory, description },
            "kvmctl snapshots create 100 clean", "kvmctl snapshots create 100 live --memory --description \"before the upgrade\"");
        create.SetAction((parsed, ct) =>
        {
            var spec = new SnapshotSpec { VmId = parsed.GetValue(createId), Name = parsed.GetValue(createName), Description = parsed.GetValue(description), IncludeMemory = parsed.GetValue(memory) ? true : null };
            var origins = new OptionOrigins();
            origins.Record(AttrPath.Root.Attr("name"), $"NAME {spec.Name}");
            return cli.SubmitAsync(parsed, Slow, spec, origins, async (client, token) =>
            {
                var snapshot = (await client.CreateSnapshotAsync(spec.VmId!.Value, spec, token)).Value;
                cli.Out.WriteLine($"snapshot {snapshot.Name} of VM {snapshot.VmId} taken ({snapshot.VmStatus}{(snapshot.IncludeMemory == true ? ", with memory" : "")}).");
                return ExitCodes.Ok;
            }, ct);
        });
        command.Subcommands.Add(create);

        var deleteId = VmCommands.VmId(cli);
        var deleteName = new Argument<string>("NAME") { Description = "Snapshot name." };
        var delete = cli.Examples(new Command("delete", "Delete a snapshot from the VM's disks.") { deleteId, deleteName }, "kvmctl snapshots delete 100 clean");
        delete.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            await client.DeleteSnapshotAsync(parsed.GetValue(deleteId), parsed.GetValue(deleteName)!, token);
            cli.Out.WriteLine($"snapshot {parsed.GetValue(deleteName)} of VM {parsed.GetValue(deleteId)} deleted.");
            return ExitCodes.Ok;
        }, ct));
        command.Subcommands.Add(delete);

        var rollbackId = VmCommands.VmId(cli);
        var rollbackName = new Argument<string>("NAME") { Description = "Snapshot name." };
        var start = new Option<bool?>("--start") { Description = "Run the VM afterwards (true/false). Default: a memory snapshot runs on; disks only: as the VM was." };
        var rollback = cli.Examples(new Command("rollback", "Return the VM to a snapshot (a disks-only rollback stops the VM first).") { rollbackId, rollbackName, start },
            "kvmctl snapshots rollback 100 clean", "kvmctl snapshots rollback 100 clean --start false");
        rollback.SetAction((parsed, ct) => cli.RunAsync(parsed, Slow, async (client, token) =>
        {
            var vm = await client.RollbackSnapshotAsync(parsed.GetValue(rollbackId), parsed.GetValue(rollbackName)!, parsed.GetValue(start), token);
            cli.Out.WriteLine($"VM {vm.VmId} rolled back to {parsed.GetValue(rollbackName)}; it is {vm.Status}.");
            return ExitCodes.Ok;
        }, ct));
        command.Subcommands.Add(rollback);
        return command;
    }
}
