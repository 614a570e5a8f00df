using System.CommandLine;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>completion bash</c>: a script that asks kvmctl itself what may come next, through System.CommandLine's
/// <c>[suggest:POSITION]</c> directive, so completion always matches the installed version (VM IDs included).
/// </summary>
public static class CompletionCommand
{
    /// <summary>The verb.</summary>
    public static Command Build(Cli cli)
    {
        var shell = new Argument<string>("SHELL") { Description = "Shell: bash (zsh can load it through bashcompinit).", DefaultValueFactory = _ => "bash" };
        shell.AcceptOnlyFromAmong("bash");
        var command = cli.Examples(new Command("completion", "Print a shell completion script.") { shell },
            "kvmctl completion bash > /etc/bash_completion.d/kvmctl", "source <(kvmctl completion bash)");
        command.SetAction(parsed =>
        {
            cli.Out.Write(Bash);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The bash script: COMP_LINE up to the cursor goes to kvmctl's suggest directive; one candidate per line comes back.</summary>
    public const string Bash = """
        # kvmctl bash completion: source <(kvmctl completion bash)
        _kvmctl_complete()
        {
            local line="${COMP_LINE:0:COMP_POINT}"
            local word="${COMP_WORDS[COMP_CWORD]}"
            local IFS=$'\n'
            local candidates
            candidates=$("${COMP_WORDS[0]}" "[suggest:${#line}]" "$line" 2>/dev/null) || return 0
            COMPREPLY=($(compgen -W "$candidates" -- "$word"))
        }
        complete -o default -F _kvmctl_complete kvmctl

        """;
}
