using System.CommandLine;
using System.CommandLine.Invocation;
using Kvm.Cli;
using Kvm.Cli.Commands;
using Kvm.Cli.Options;

// kvmctl: the qm/virsh-style command line for kvm-agent. This file is the table of contents.
var cli = new Cli(new Connection(), Console.Out, Console.Error);
var root = new RootCommand("kvmctl: manage VMs, volumes, networks and pools on a kvm-agent host, the way qm and virsh do.\n" +
    "Agent: --endpoint/KVM_ENDPOINT (default http://127.0.0.1:8680); token: --token-file, --token, KVM_TOKEN, or a local agent's /var/lib/kvm-agent/token.\n" +
    "Exit codes: 0 ok, 1 agent error, 2 usage, 3 not found, 4 conflict/busy, 5 timeout, 6 agent unreachable, 7 not available yet.");
foreach (var option in cli.Connection.Options)
    root.Options.Add(option);
foreach (var command in VmCommands.All(cli))
    root.Subcommands.Add(command);
root.Subcommands.Add(StorageCommands.Volumes(cli));
root.Subcommands.Add(SnapshotCommands.Snapshots(cli));
root.Subcommands.Add(MigrateCommand.Build(cli));
root.Subcommands.Add(HostCommands.Networks(cli));
root.Subcommands.Add(StorageCommands.Pools(cli));
root.Subcommands.Add(StorageCommands.Images(cli));
root.Subcommands.Add(HostCommands.Host(cli));
root.Subcommands.Add(CompletionCommand.Build(cli));
cli.InstallHelpExamples(root);

var vmOptionNames = root.Subcommands.Where(c => c.Name is "create" or "set")
    .SelectMany(c => c.Options).SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet(StringComparer.Ordinal);
var flagNames = root.Subcommands.Where(c => c.Name is "create" or "set")
    .SelectMany(c => c.Options).Where(o => o.ValueType == typeof(bool) || o.ValueType == typeof(bool?))
    .SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet(StringComparer.Ordinal);
var parsed = root.Parse(QmArguments.Normalize(args, vmOptionNames, flagNames));
if (parsed.Action is ParseErrorAction)
{
    var atRoot = parsed.CommandResult.Command == root;
    if (atRoot && parsed.UnmatchedTokens.Count > 0)
        return cli.Fail(CliException.Usage($"unknown verb \"{parsed.UnmatchedTokens[0]}\".",
            [$"verbs: {string.Join(", ", root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))}", "see: kvmctl --help"]));
    var verb = atRoot ? "kvmctl" : $"kvmctl {string.Join(' ', Ancestry(parsed.CommandResult.Command))}";
    return cli.Fail(CliException.Usage(parsed.Errors[0].Message, [.. parsed.Errors.Skip(1).Select(e => e.Message), $"see: {verb} --help"]));
}
return await parsed.InvokeAsync();

static IEnumerable<string> Ancestry(Command command)
{
    var names = new List<string>();
    for (var c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault())
        names.Insert(0, c.Name);
    return names;
}
