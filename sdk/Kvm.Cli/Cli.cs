using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Net;
using Kvm.Cli.Options;
using Kvm.Cli.Output;
using Kvm.Client;
using Kvm.Model;
using Kvm.Model.Validation;

namespace Kvm.Cli;

/// <summary>What every verb shares: the connection, the writers, help examples, and turning failures into exit codes.</summary>
public sealed class Cli(Connection connection, TextWriter output, TextWriter error)
{
    private readonly Dictionary<Command, string[]> _examples = [];

    /// <summary>Endpoint and token options.</summary>
    public Connection Connection { get; } = connection;

    /// <summary>stdout.</summary>
    public TextWriter Out { get; } = output;

    /// <summary>stderr.</summary>
    public TextWriter Err { get; } = error;

    /// <summary>Budget for reads and quick actions.</summary>
    public static readonly TimeSpan Quick = TimeSpan.FromSeconds(60);

    /// <summary>Registers the examples <c>--help</c> prints for <paramref name="command"/>.</summary>
    public T Examples<T>(T command, params string[] examples) where T : Command
    {
        _examples[command] = examples;
        return command;
    }

    /// <summary>Makes the help option print each verb's examples after the generated help.</summary>
    public void InstallHelpExamples(RootCommand root)
    {
        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithExamples((HelpAction)help.Action!, _examples);
    }

    /// <summary>
    /// Runs a verb against the agent: opens the client, runs <paramref name="body"/>, and maps every failure to a message on
    /// stderr and an exit code (see <see cref="ExitCodes"/>).
    /// </summary>
    public async Task<int> RunAsync(ParseResult parsed, TimeSpan budget, Func<KvmClient, CancellationToken, Task<int>> body, CancellationToken cancellationToken)
    {
        Uri? endpoint = null;
        try
        {
            var (client, resolved) = Connection.Open(parsed, budget);
            endpoint = resolved;
            using (client)
                return await body(client, cancellationToken);
        }
        catch (CliException e)
        {
            return Fail(e);
        }
        catch (KvmApiException e)
        {
            return Fail(Problem(e, null, endpoint));
        }
        catch (HttpRequestException e) when (endpoint is not null)
        {
            return Fail(Connection.Unreachable(endpoint, e));
        }
        catch (TaskCanceledException e) when (endpoint is not null && !cancellationToken.IsCancellationRequested)
        {
            return Fail(Connection.Unreachable(endpoint, e));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Err.WriteLine("kvmctl: interrupted; the agent finishes an operation it already started.");
            return 130;
        }
    }

    /// <summary>Runs a verb that needs no agent.</summary>
    public int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (CliException e)
        {
            return Fail(e);
        }
    }

    /// <summary>Prints a failure; returns its exit code.</summary>
    public int Fail(CliException e)
    {
        Err.WriteLine($"{Terminal.Paint("kvmctl:", Color.Red, Terminal.ColorErr)} {e.Message}");
        foreach (var line in e.Details)
            Err.WriteLine("  " + line);
        return e.ExitCode;
    }

    /// <summary>The agent's problem details as a failure, with each attribute error naming the option that set it.</summary>
    public static CliException Problem(KvmApiException e, OptionOrigins? origins, Uri? endpoint = null, string? hint = null)
    {
        var code = e.Type switch
        {
            ProblemTypes.NotFound => ExitCodes.NotFound,
            ProblemTypes.Conflict or ProblemTypes.Busy or ProblemTypes.StaleEtag or ProblemTypes.InvalidState
                or ProblemTypes.RequiresReplacement or ProblemTypes.Protected => ExitCodes.Conflict,
            ProblemTypes.Validation or ProblemTypes.MalformedBody => ExitCodes.Usage,
            _ => e.Status switch
            {
                HttpStatusCode.NotFound => ExitCodes.NotFound,
                HttpStatusCode.Conflict or HttpStatusCode.PreconditionFailed or HttpStatusCode.Locked => ExitCodes.Conflict,
                HttpStatusCode.UnprocessableEntity or HttpStatusCode.BadRequest => ExitCodes.Usage,
                _ => ExitCodes.AgentError,
            },
        };
        var details = e.Errors.Select(error => (origins ?? new OptionOrigins()).Describe(error.Attribute, error.Detail)).ToList();
        if (e.Type == ProblemTypes.Unauthorized || e.Status == HttpStatusCode.Unauthorized)
            hint ??= $"the agent{(endpoint is null ? "" : " at " + endpoint.GetLeftPart(UriPartial.Authority))} refused the token: check --token, --token-file or KVM_TOKEN (a local agent keeps its token in {Connection.DefaultTokenFile}).";
        if (e.Type == ProblemTypes.Busy)
            hint ??= "another operation on this resource is running; retry when it finishes.";
        if (hint is not null)
            details.Add(hint);
        var title = string.IsNullOrEmpty(e.Detail) || e.Detail == e.Title ? e.Title : $"{e.Title}: {e.Detail}";
        return new CliException(code, $"{title} ({(int)e.Status})", details);
    }

    /// <summary>
    /// Sends a spec built from options: validated first (nothing is sent when it fails), then
    /// <paramref name="send"/>, with the agent's attribute errors named by the options that set them.
    /// </summary>
    public Task<int> SubmitAsync(ParseResult parsed, TimeSpan budget, object spec, OptionOrigins origins,
        Func<KvmClient, CancellationToken, Task<int>> send, CancellationToken cancellationToken)
    {
        try
        {
            ThrowIfInvalid(Validator.Validate(spec), origins);
        }
        catch (CliException e)
        {
            return Task.FromResult(Fail(e));
        }
        return RunAsync(parsed, budget, async (client, token) =>
        {
            try
            {
                return await send(client, token);
            }
            catch (KvmApiException e)
            {
                throw Problem(e, origins);
            }
        }, cancellationToken);
    }

    /// <summary>kvmctl's own validation of a spec it built: every error names its option; nothing is sent.</summary>
    public static void ThrowIfInvalid(IReadOnlyList<ValidationError> errors, OptionOrigins origins)
    {
        if (errors.Count > 0)
            throw CliException.Usage("invalid options; nothing was sent to the agent:", [.. errors.Select(e => origins.Describe(e.Attribute, e.Detail))]);
    }

    private sealed class HelpWithExamples(HelpAction inner, Dictionary<Command, string[]> examples) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            inner.Invoke(parseResult);
            var output = parseResult.InvocationConfiguration.Output;
            if (examples.TryGetValue(parseResult.CommandResult.Command, out var lines))
            {
                output.WriteLine("Examples:");
                foreach (var line in lines)
                    output.WriteLine("  " + line);
                output.WriteLine();
            }
            return 0;
        }
    }
}
