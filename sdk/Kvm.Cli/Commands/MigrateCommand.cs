using System.CommandLine;
using Kvm.Client;
using Kvm.Client.Operations;

namespace Kvm.Cli.Commands;

/// <summary><c>migrate ID TARGET</c>: Proxmox's <c>qm migrate</c> between two agents, with the VM's local disks.</summary>
public static class MigrateCommand
{
    private static readonly TimeSpan Budget = TimeSpan.FromHours(6);

    /// <summary>The verb.</summary>
    public static Command Build(Cli cli)
    {
        ArgumentNullException.ThrowIfNull(cli);
        var vmId = VmCommands.VmId(cli);
        var target = new Argument<string>("TARGET") { Description = "The target agent's URL (" + AgentEndpoint.Forms + ")." };
        var online = new Option<bool>("--online") { Description = "Migrate a running VM live (qm migrate --online). Without it a running VM is refused, as qm does." };
        var restart = new Option<bool>("--restart") { Description = "A running VM is shut down, copied and started again on the target (instead of --online)." };
        var localDisks = new Option<bool>("--with-local-disks") { Description = "Accepted for qm compatibility: inline disks and the EFI store always go with the VM." };
        var targetTokenFile = new Option<string?>("--target-token-file") { Description = "File with the target agent's token (default: the source's token)." };
        var command = cli.Examples(new Command("migrate", "Move a VM with its disks to another agent, live (--online) or cold; nothing is lost on failure.")
            { vmId, target, online, restart, localDisks, targetTokenFile },
            "kvmctl migrate 100 http://10.0.0.2:8680 --online", "kvmctl migrate 100 http://10.0.0.2:8680", "kvmctl migrate 100 http://10.0.0.2:8680 --restart");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, Budget, async (source, token) =>
        {
            var id = parsed.GetValue(vmId);
            if (!AgentEndpoint.TryParse(parsed.GetValue(target), out var targetUri))
                throw CliException.Usage($"TARGET \"{parsed.GetValue(target)}\" is not {AgentEndpoint.Forms}.");
            if (parsed.GetValue(online) && parsed.GetValue(restart))
                throw CliException.Usage("--online and --restart exclude each other.");
            var vm = (await source.GetVmAsync(id, token)).Value;
            var running = vm.Status is "running" or "paused";
            if (running && !parsed.GetValue(online) && !parsed.GetValue(restart))
                throw CliException.Usage($"VM {id} is {vm.Status}: add --online to migrate it live, or --restart to shut it down and start it on the target.");
            var targetToken = parsed.GetValue(targetTokenFile) is { } file
                ? File.ReadAllText(file).Trim()
                : cli.Connection.ResolveToken(parsed, cli.Connection.ResolveEndpoint(parsed));
            using var targetClient = KvmClient.Create(targetUri, targetToken, new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5) }, Budget);
            Kvm.Model.Vm moved;
            try
            {
                moved = await VmMigration.MigrateAsync(source, targetClient, id, online: !parsed.GetValue(restart), null, token);
            }
            catch (MigrationSourceCleanupException e)
            {
                cli.Err.WriteLine($"kvmctl: {e.Message}");
                return ExitCodes.AgentError;
            }
            cli.Out.WriteLine($"VM {id} migrated to {targetUri} ({(running ? parsed.GetValue(restart) ? "restarted there" : "live" : "cold")}); it is {moved.Status}.");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }
}
