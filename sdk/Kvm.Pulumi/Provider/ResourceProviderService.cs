using System.Reflection;
using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Schema;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Provider;

/// <summary>
/// pulumirpc.ResourceProvider: each handler decodes the request's Structs, asks
/// <see cref="ResourceLogic"/> or the agent, and encodes the answer. One instance per plugin
/// process, which the engine starts per provider configuration.
/// </summary>
public sealed class ResourceProviderService : IDisposable
{
    private readonly Func<ProviderSettings, IKvmBackend> _backendFactory;
    private readonly Func<string, string?> _environment;
    private readonly CancellationTokenSource _cancelled = new();
    private volatile Configured? _configured;

    public ResourceProviderService(Func<ProviderSettings, IKvmBackend> backendFactory, EngineLog log, Func<string, string?>? environment = null)
    {
        _backendFactory = backendFactory;
        Log = log;
        _environment = environment ?? Environment.GetEnvironmentVariable;
    }

    public EngineLog Log { get; }

    private sealed record Configured(ProviderSettings Settings, IKvmBackend Backend);

    /// <summary>Adds every method the engine calls to <paramref name="router"/>; the rest answer UNIMPLEMENTED.</summary>
    public GrpcRouter Register(GrpcRouter router)
    {
        ArgumentNullException.ThrowIfNull(router);
        return router
            .Unary(ResourceProviderMethods.Handshake, ProviderHandshakeRequest.Parser, (r, _) => Task.FromResult(Handshake(r)))
            .Unary(ResourceProviderMethods.GetPluginInfo, Empty.Parser, (_, _) => Task.FromResult(new PluginInfo { Version = PulumiSchema.Version }))
            .Unary(ResourceProviderMethods.GetSchema, GetSchemaRequest.Parser, (r, _) => Task.FromResult(GetSchema(r)))
            .Unary(ResourceProviderMethods.CheckConfig, CheckRequest.Parser, (r, _) => Task.FromResult(CheckConfig(r)))
            .Unary(ResourceProviderMethods.DiffConfig, DiffRequest.Parser, (r, _) => Task.FromResult(DiffConfig(r)))
            .Unary(ResourceProviderMethods.Configure, ConfigureRequest.Parser, (r, _) => Task.FromResult(Configure(r)))
            .Unary(ResourceProviderMethods.Check, CheckRequest.Parser, (r, _) => Task.FromResult(Check(r)))
            .Unary(ResourceProviderMethods.Diff, DiffRequest.Parser, (r, _) => Task.FromResult(Diff(r)))
            .Unary(ResourceProviderMethods.Create, CreateRequest.Parser, CreateAsync)
            .Unary(ResourceProviderMethods.Read, ReadRequest.Parser, ReadAsync)
            .Unary(ResourceProviderMethods.Update, UpdateRequest.Parser, UpdateAsync)
            .Unary(ResourceProviderMethods.Delete, DeleteRequest.Parser, DeleteAsync)
            .Unary(ResourceProviderMethods.Invoke, InvokeRequest.Parser, InvokeAsync)
            .Unary(ResourceProviderMethods.Cancel, Empty.Parser, (_, _) => Task.FromResult(Cancel()))
            .Unary(ResourceProviderMethods.Attach, PluginAttach.Parser, (r, _) => Task.FromResult(Attach(r)))
            .Unary(ResourceProviderMethods.GetMapping, GetMappingRequest.Parser, (_, _) => Task.FromResult(new GetMappingResponse()))
            .Unary(ResourceProviderMethods.GetMappings, GetMappingsRequest.Parser, (_, _) => Task.FromResult(new GetMappingsResponse()));
    }

    /// <summary>Cancelled by the engine's Cancel: work in flight stops, later calls fail fast.</summary>
    public CancellationToken Cancelled => _cancelled.Token;

    internal ProviderHandshakeResponse Handshake(ProviderHandshakeRequest request)
    {
        Log.Connect(request.EngineAddress);
        // Must equal what Configure answers; secrets and resource references are understood.
        return new ProviderHandshakeResponse { AcceptSecrets = true, AcceptResources = true };
    }

    internal static GetSchemaResponse GetSchema(GetSchemaRequest request)
    {
        if (!string.IsNullOrEmpty(request.SubpackageName))
            throw new GrpcException(StatusCode.InvalidArgument, "kvm has no subpackages");
        return new GetSchemaResponse { Schema = CommittedSchema.Value };
    }

    private static readonly Lazy<string> CommittedSchema = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("schema.json")
            ?? throw new InvalidOperationException("schema.json is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    internal CheckResponse CheckConfig(CheckRequest request)
    {
        var news = PropertyCodec.Decode(request.News, ProviderFields.Shape, DecodeMode.Config);
        var response = new CheckResponse { Inputs = request.News ?? new Struct() };
        response.Failures.AddRange(ProviderSettings.Check(news).Select(Failure));
        return response;
    }

    internal static DiffResponse DiffConfig(DiffRequest request)
    {
        var olds = PropertyCodec.Decode(request.Olds, ProviderFields.Shape, DecodeMode.Config);
        var news = PropertyCodec.Decode(request.News, ProviderFields.Shape, DecodeMode.Config);
        var response = new DiffResponse { HasDetailedDiff = true };
        foreach (var field in ProviderFields.Shape.Fields)
        {
            var path = AttrPath.Root.Attr(field.Name);
            var before = olds.Value[field.Name];
            var after = news.Value[field.Name];
            if (!news.IsUnknownAt(path) && JsonNode.DeepEquals(before, after))
                continue;
            // New agent addresses or a new token apply to the next calls; no resource is replaced.
            response.Diffs.Add(field.WireName);
            response.DetailedDiff[field.WireName] = new PropertyDiff { Kind = DiffKind(ChangeOf(before, after), replace: false) };
        }
        response.Changes = response.Diffs.Count == 0 ? DiffResponse.Types.DiffChanges.DiffNone : DiffResponse.Types.DiffChanges.DiffSome;
        return response;
    }

    internal ConfigureResponse Configure(ConfigureRequest request)
    {
        var args = request.Args ?? FromVariables(request.Variables);
        var config = PropertyCodec.Decode(args, ProviderFields.Shape, DecodeMode.Config);
        var problems = ProviderSettings.Check(config);
        if (problems.Count > 0)
            throw new GrpcException(StatusCode.InvalidArgument, string.Join("; ", problems.Select(p => $"{JsonPaths.ToPulumi(p.Path)}: {p.Message}")));
        var settings = ProviderSettings.From(config.Value, _environment);
        if (settings.Endpoint is null && settings.Hosts.Count == 0)
        {
            var missing = new ConfigureErrorMissingKeys();
            missing.MissingKeys.Add(new ConfigureErrorMissingKeys.Types.MissingKey
            {
                Name = "kvm:endpoint",
                Description = ProviderFields.Endpoint.Description,
            });
            throw GrpcException.WithDetails(StatusCode.InvalidArgument,
                $"no agent to talk to: set kvm:endpoint (or {ProviderFields.EndpointEnvironment}) or kvm:hosts", missing);
        }
        _configured = new Configured(settings, _backendFactory(settings));
        return new ConfigureResponse { AcceptSecrets = true, AcceptResources = true, SupportsPreview = true };
    }

    // Engines that send only the deprecated variables map use keys like "kvm:config:endpoint".
    private static Struct FromVariables(IDictionary<string, string> variables)
    {
        var args = new Struct();
        foreach (var (key, value) in variables)
        {
            var name = key.StartsWith("kvm:config:", StringComparison.Ordinal) ? key["kvm:config:".Length..]
                : key.StartsWith("kvm:", StringComparison.Ordinal) ? key["kvm:".Length..] : key;
            args.Fields[name] = Value.ForString(value);
        }
        return args;
    }

    internal CheckResponse Check(CheckRequest request)
    {
        var kind = KindOf(request.Type, request.Urn);
        var news = PropertyCodec.Decode(request.News, kind.Shape, DecodeMode.Inputs);
        var olds = request.Olds is { Fields.Count: > 0 } ? PropertyCodec.Decode(request.Olds, kind.Shape, DecodeMode.State) : null;
        // Inputs go back as they came: the plugin applies no defaults the agent would not store.
        var response = new CheckResponse { Inputs = request.News ?? new Struct() };
        response.Failures.AddRange(ResourceLogic.Check(kind, news, olds, _configured?.Settings).Select(Failure));
        return response;
    }

    internal static DiffResponse Diff(DiffRequest request)
    {
        var kind = KindOf(request.Type, request.Urn);
        var olds = PropertyCodec.Decode(request.Olds, kind.Shape, DecodeMode.State);
        var news = PropertyCodec.Decode(request.News, kind.Shape, DecodeMode.State);
        var outcome = ResourceLogic.Diff(kind, olds.Value, news).Ignoring(IgnoredPaths.Parse(request.IgnoreChanges));
        var response = new DiffResponse
        {
            HasDetailedDiff = true,
            Changes = outcome.Changes.Count == 0 ? DiffResponse.Types.DiffChanges.DiffNone : DiffResponse.Types.DiffChanges.DiffSome,
            DeleteBeforeReplace = outcome.DeleteBeforeReplace,
        };
        response.Replaces.AddRange(outcome.Replaces);
        response.Diffs.AddRange(outcome.Diffs);
        foreach (var change in outcome.Changes)
            response.DetailedDiff[JsonPaths.ToPulumi(change.Path)] = new PropertyDiff { Kind = DiffKind(change.Change, change.Replaces) };
        return response;
    }

    internal async Task<CreateResponse> CreateAsync(CreateRequest request, GrpcCallContext call)
    {
        var kind = KindOf(request.Type, request.Urn);
        var news = PropertyCodec.Decode(request.Properties, kind.Shape, DecodeMode.State);
        if (request.Preview)
            return new CreateResponse { Properties = PropertyCodec.Encode(ResourceLogic.PreviewOfCreate(kind, news), kind.Shape, news.Secrets) };

        RequireKnown(news, "create");
        var config = news.Known();
        var host = ResourceLogic.TakeHost(config);
        var operations = Operations(kind);
        using var cancel = Linked(call, request.Timeout);
        var state = await Run(() => operations.CreateAsync(host ?? "", config, cancel.Token), news, host, operations, kind).ConfigureAwait(false);
        var outputs = ResourceLogic.WithHost(state, host);
        await WarnAboutPendingChanges(kind, state, request.Urn).ConfigureAwait(false);
        return new CreateResponse { Id = operations.IdOf(state), Properties = PropertyCodec.Encode(outputs, kind.Shape, news.Secrets) };
    }

    internal async Task<ReadResponse> ReadAsync(ReadRequest request, GrpcCallContext call)
    {
        var kind = KindOf(request.Type, request.Urn);
        var properties = PropertyCodec.Decode(request.Properties, kind.Shape, DecodeMode.State);
        var inputs = request.Inputs is { Fields.Count: > 0 } ? PropertyCodec.Decode(request.Inputs, kind.Shape, DecodeMode.State) : null;
        var importing = properties.Value.Count == 0 && inputs is null;
        var (importHost, id) = importing ? ResourceLogic.SplitImportId(kind, request.Id) : (null, request.Id);
        var host = importHost ?? Host(properties.Value) ?? (inputs is null ? null : Host(inputs.Value));

        var operations = Operations(kind);
        using var cancel = Linked(call, request.Timeout);
        var state = await Run(() => operations.ReadAsync(host ?? "", id, cancel.Token), null, host, operations, kind).ConfigureAwait(false);
        if (state is null)
            return new ReadResponse { Id = "" };
        // The agent answers fingerprints for sensitive values: keep the clear value the engine holds while it matches.
        Kvm.Model.Secrets.Restore(state, properties.Value.Count > 0 ? properties.Value : inputs?.Value, Kvm.Model.Schema.Schemas.For(operations.ModelType));

        var secrets = new HashSet<AttrPath>(properties.Secrets);
        secrets.UnionWith(inputs?.Secrets ?? []);
        var outputs = ResourceLogic.WithHost(state, host);
        return new ReadResponse
        {
            Id = operations.IdOf(state),
            Properties = PropertyCodec.Encode(outputs, kind.Shape, secrets),
            Inputs = PropertyCodec.Encode(ResourceLogic.InputsFromState(kind, outputs, inputs?.Value), kind.Shape, secrets),
        };
    }

    internal async Task<UpdateResponse> UpdateAsync(UpdateRequest request, GrpcCallContext call)
    {
        var kind = KindOf(request.Type, request.Urn);
        var olds = PropertyCodec.Decode(request.Olds, kind.Shape, DecodeMode.State);
        var news = PropertyCodec.Decode(request.News, kind.Shape, DecodeMode.State);
        var secrets = new HashSet<AttrPath>(news.Secrets);
        if (request.Preview)
            return new UpdateResponse { Properties = PropertyCodec.Encode(ResourceLogic.PreviewOfUpdate(kind, olds.Value, news), kind.Shape, secrets) };

        RequireKnown(news, "update");
        var prior = (JsonObject)olds.Value.DeepClone();
        var host = ResourceLogic.TakeHost(prior);
        var config = news.Known();
        var newHost = ResourceLogic.TakeHost(config);
        var operations = Operations(kind);
        // Diff allowed a host change without replacement: the VM migrates (Kvm.Client's VmMigration), then the update applies there.
        var mover = (newHost ?? "") != (host ?? "") ? operations as IMovableOperations : null;
        using var cancel = Linked(call, request.Timeout);
        JsonObject state;
        try
        {
            state = await Run(() => mover is null
                ? operations.UpdateAsync(host ?? "", request.Id, prior, config, cancel.Token)
                : MoveAsync(mover, operations, host ?? "", newHost ?? "", request.Id, prior, config, request.Urn, cancel.Token), news, host, operations, kind).ConfigureAwait(false);
        }
        catch (GrpcException e) when (!NothingHappened(e.StatusCode) && e.GetDetail<ErrorResourceInitFailed>() is null)
        {
            // A failed migration leaves the VM on the old host unless it got through; the old host is asked first.
            var where = mover is not null && await ExistsAsync(operations, host, request.Id).ConfigureAwait(false) == false ? newHost : host;
            throw await PartialUpdateAsync(e, operations, where, request.Id, olds.Value, news, kind).ConfigureAwait(false);
        }
        await WarnAboutPendingChanges(kind, state, request.Urn).ConfigureAwait(false);
        return new UpdateResponse { Properties = PropertyCodec.Encode(ResourceLogic.WithHost(state, mover is null ? host : newHost), kind.Shape, secrets) };
    }

    private async Task<JsonObject> MoveAsync(IMovableOperations mover, IResourceOperations operations, string from, string to, string id,
        JsonObject prior, JsonObject config, string urn, CancellationToken cancellationToken)
    {
        try
        {
            return await mover.MoveAsync(from, to, id, prior, config, cancellationToken).ConfigureAwait(false);
        }
        catch (MigrationSourceCleanupException e)
        {
            await Log.WarningAsync(e.Message, urn).ConfigureAwait(false);
            return await operations.UpdateAsync(to, id, prior, config, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<bool?> ExistsAsync(IResourceOperations operations, string? host, string id)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await operations.ReadAsync(host ?? "", id, timeout.Token).ConfigureAwait(false) is not null;
        }
        catch (Exception e) when (e is HttpRequestException or KvmApiException or OperationCanceledException)
        {
            return null;
        }
    }

    internal async Task<Empty> DeleteAsync(DeleteRequest request, GrpcCallContext call)
    {
        var kind = KindOf(request.Type, request.Urn);
        var olds = PropertyCodec.Decode(request.Properties, kind.Shape, DecodeMode.State);
        var prior = (JsonObject)olds.Value.DeepClone();
        var host = ResourceLogic.TakeHost(prior);
        var operations = Operations(kind);
        using var cancel = Linked(call, request.Timeout);
        await Run(async () =>
        {
            await operations.DeleteAsync(host ?? "", request.Id, prior, cancel.Token).ConfigureAwait(false);
            return true;
        }, null, host, operations, kind).ConfigureAwait(false);
        return new Empty();
    }

    internal async Task<InvokeResponse> InvokeAsync(InvokeRequest request, GrpcCallContext call)
    {
        var function = FunctionKind.ForToken(request.Tok)
            ?? throw new GrpcException(StatusCode.InvalidArgument, $"unknown function {request.Tok}");
        var args = PropertyCodec.Decode(request.Args, function.Arguments, DecodeMode.Inputs);
        var response = new InvokeResponse();
        var problems = new List<PropertyProblem>(args.Problems);
        foreach (var field in function.Arguments.Fields.Where(f => f.Required && args.Value[f.Name] is null && !args.IsUnknownAt(AttrPath.Root.Attr(f.Name))))
            problems.Add(new PropertyProblem(AttrPath.Root.Attr(field.Name), "is required."));
        var host = ResourceLogic.TakeHost((JsonObject)args.Value.DeepClone());
        var configured = RequireConfigured();
        if (host is not null && !configured.Settings.Knows(host))
            problems.Add(new PropertyProblem(AttrPath.Root.Attr(ResourceKind.HostField), configured.Settings.UnknownHostMessage(host)));
        if (problems.Count > 0 || args.HasUnknowns)
        {
            response.Failures.AddRange(problems.Select(Failure));
            return response;
        }

        using var cancel = Linked(call, 0);
        JsonObject? result;
        if (function == FunctionKind.GetHost)
        {
            result = await Guard(() => configured.Backend.ReadHostAsync(host ?? "", cancel.Token)).ConfigureAwait(false);
        }
        else if (function == FunctionKind.GetVmAddresses)
        {
            var vmId = args.Value["vm_id"]!.GetValue<long>();
            result = await Guard(() => configured.Backend.ReadVmAddressesAsync(host ?? "", vmId, cancel.Token)).ConfigureAwait(false);
        }
        else
        {
            var vmId = args.Value["vm_id"]!.ToJsonString();
            result = await Guard(() => configured.Backend.Resource(typeof(Vm)).ReadAsync(host ?? "", vmId, cancel.Token)).ConfigureAwait(false);
            if (result is null)
            {
                response.Failures.Add(new CheckFailure { Property = "vmId", Reason = $"no VM {vmId} on {(host is null ? "the default host" : $"host \"{host}\"")}." });
                return response;
            }
        }
        response.Return = PropertyCodec.Encode(ResourceLogic.WithHost(result, host), function.Result);
        return response;
    }

    internal Empty Cancel()
    {
        _cancelled.Cancel();
        return new Empty();
    }

    internal Empty Attach(PluginAttach request)
    {
        Log.Connect(request.Address);
        return new Empty();
    }

    private static ResourceKind KindOf(string type, string urn) =>
        (string.IsNullOrEmpty(type) ? null : ResourceKind.ForToken(type)) ?? ResourceKind.ForUrn(urn)
        ?? throw new GrpcException(StatusCode.InvalidArgument, $"unknown resource type {(string.IsNullOrEmpty(type) ? urn : type)}");

    private Configured RequireConfigured() => _configured
        ?? throw new GrpcException(StatusCode.FailedPrecondition, "the kvm provider is not configured yet (Configure was not called)");

    private IResourceOperations Operations(ResourceKind kind)
    {
        if (_cancelled.IsCancellationRequested)
            throw new GrpcException(StatusCode.Cancelled, "the operation was cancelled");
        return RequireConfigured().Backend.Resource(kind.ModelType);
    }

    private static void RequireKnown(DecodedProperties properties, string operation)
    {
        if (properties.HasUnknowns)
            throw new GrpcException(StatusCode.InvalidArgument,
                $"cannot {operation} with unknown values at {string.Join(", ", properties.Unknowns.Select(JsonPaths.ToPulumi))}");
    }

    private CancellationTokenSource Linked(GrpcCallContext call, double timeoutSeconds)
    {
        var linked = CancellationTokenSource.CreateLinkedTokenSource(call.CancellationToken, _cancelled.Token);
        if (timeoutSeconds > 0)
            linked.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
        return linked;
    }

    private static string? Host(JsonObject properties) => ResourceLogic.TakeHost((JsonObject)properties.DeepClone());

    /// <summary>
    /// Runs one agent call and turns its failure into the status the engine understands: a
    /// partial failure (the resource exists, in the state attached to the exception) becomes
    /// ErrorResourceInitFailed so the engine keeps it and retries with Update.
    /// </summary>
    private static async Task<T> Run<T>(Func<Task<T>> call, DecodedProperties? inputs, string? host, IResourceOperations operations, ResourceKind kind)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (PartialState(e) is { } state)
        {
            var outputs = ResourceLogic.WithHost(state, host);
            var detail = new ErrorResourceInitFailed
            {
                Id = operations.IdOf(state),
                Properties = PropertyCodec.Encode(outputs, kind.Shape, inputs?.Secrets),
                Inputs = inputs is null ? PropertyCodec.Encode(ResourceLogic.InputsOf(kind, outputs), kind.Shape) : PropertyCodec.Encode(inputs.Value, kind.Shape, inputs.Secrets),
            };
            detail.Reasons.Add(e.Message);
            throw GrpcException.WithDetails(StatusCode.Unknown, e.Message, detail);
        }
        catch (Exception e) when (e is not GrpcException)
        {
            throw Translate(e);
        }
    }

    // The shared lifecycles throw PartialCreateException when a create succeeded but a later step
    // (the read-back) failed; other layers may attach the state under PartialStateKey.
    private static JsonObject? PartialState(Exception e) => e switch
    {
        PartialCreateException partial => partial.Created,
        _ => e.Data[PartialStateKey] as JsonObject,
    };

    // Refusals: the agent (or the plugin before sending anything) changed nothing.
    private static bool NothingHappened(StatusCode code) => code is StatusCode.InvalidArgument or StatusCode.FailedPrecondition
        or StatusCode.NotFound or StatusCode.AlreadyExists or StatusCode.Aborted or StatusCode.Unauthenticated
        or StatusCode.PermissionDenied or StatusCode.ResourceExhausted;

    /// <summary>
    /// An update that failed after the agent may have applied part of it (a lost answer, a failed
    /// restart): read the resource back and, when it changed, report ErrorResourceInitFailed with what
    /// is there now, so the engine stores it and the next up finishes the job. If the read fails too,
    /// or nothing changed, the original error stands.
    /// </summary>
    private static async Task<GrpcException> PartialUpdateAsync(GrpcException failure, IResourceOperations operations, string? host, string id,
        JsonObject oldState, DecodedProperties news, ResourceKind kind)
    {
        JsonObject? current;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            current = await operations.ReadAsync(host ?? "", id, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or KvmApiException or OperationCanceledException)
        {
            return failure;
        }
        if (current is null)
            return failure;
        var outputs = ResourceLogic.WithHost(current, host);
        if (JsonNode.DeepEquals(ResourceLogic.InputsOf(kind, outputs), ResourceLogic.InputsOf(kind, oldState)))
            return failure;
        var detail = new ErrorResourceInitFailed
        {
            Id = operations.IdOf(current),
            Properties = PropertyCodec.Encode(outputs, kind.Shape, news.Secrets),
            Inputs = PropertyCodec.Encode(news.Value, kind.Shape, news.Secrets),
        };
        detail.Reasons.Add("updated in part, then failed: " + failure.Message);
        return GrpcException.WithDetails(StatusCode.Unknown, failure.Message, detail);
    }

    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is not GrpcException)
        {
            throw Translate(e);
        }
    }

    /// <summary>
    /// Key under <see cref="Exception.Data"/> where the agent client puts the read-back state of
    /// a resource an operation left half done (created but not started, updated in part).
    /// </summary>
    public const string PartialStateKey = "kvm.partial_state";

    // INTERNAL/UNKNOWN tell the engine the outcome is unknown; other codes promise nothing happened.
    private static GrpcException Translate(Exception e) => e switch
    {
        OperationCanceledException => new GrpcException(StatusCode.Cancelled, "the operation was cancelled or timed out", e),
        HttpRequestException => new GrpcException(StatusCode.Unavailable, "cannot reach the kvm-agent: " + e.Message, e),
        KvmApiException problem => new GrpcException(StatusOf(problem), Describe(problem), e),
        _ => new GrpcException(StatusCode.Unknown, e.Message, e),
    };

    /// <summary>The agent's refusals (4xx) changed nothing; its own failures (5xx) may have changed something.</summary>
    internal static StatusCode StatusOf(KvmApiException problem) => problem.Type switch
    {
        ProblemTypes.Validation or ProblemTypes.MalformedBody or ProblemTypes.TooLarge or ProblemTypes.RequiresReplacement => StatusCode.InvalidArgument,
        ProblemTypes.NotFound => StatusCode.NotFound,
        ProblemTypes.Conflict => StatusCode.AlreadyExists,
        ProblemTypes.Busy => StatusCode.Unavailable,
        ProblemTypes.StaleEtag => StatusCode.Aborted,
        ProblemTypes.InvalidState or ProblemTypes.Protected => StatusCode.FailedPrecondition,
        ProblemTypes.Admission or ProblemTypes.NoSpace => StatusCode.ResourceExhausted,
        ProblemTypes.Unauthorized => StatusCode.Unauthenticated,
        _ => (int)problem.Status switch
        {
            401 => StatusCode.Unauthenticated,
            403 => StatusCode.PermissionDenied,
            404 => StatusCode.NotFound,
            409 or 412 or 423 => StatusCode.FailedPrecondition,
            429 or 503 => StatusCode.Unavailable,
            >= 400 and < 500 => StatusCode.InvalidArgument,
            _ => StatusCode.Unknown,
        },
    };

    // The agent names attributes the Terraform way (disks["scsi0"].size_gib); Pulumi users read camelCase.
    private static string Describe(KvmApiException problem)
    {
        var head = string.IsNullOrEmpty(problem.Detail) ? problem.Title : $"{problem.Title}: {problem.Detail}";
        return problem.Errors.Count == 0 ? head
            : head + string.Concat(problem.Errors.Select(error => $"\n  {(error.Attribute.Length == 0 ? "(request)" : JsonPaths.ToPulumi(AttrPath.Parse(error.Attribute)))}: {error.Detail}"));
    }

    private async Task WarnAboutPendingChanges(ResourceKind kind, JsonObject state, string urn)
    {
        if (kind.ModelType == typeof(Vm) && state["pending_changes"] is JsonArray { Count: > 0 } pending)
        {
            var names = string.Join(", ", pending.Select(p => JsonPaths.ToPulumi(AttrPath.Parse(p?.GetValue<string>() ?? ""))));
            await Log.WarningAsync($"changes take effect at the VM's next start: {names}", urn).ConfigureAwait(false);
        }
    }

    private static PropertyDiff.Types.Kind DiffKind(ChangeKind change, bool replace) => (change, replace) switch
    {
        (ChangeKind.Add, false) => PropertyDiff.Types.Kind.Add,
        (ChangeKind.Add, true) => PropertyDiff.Types.Kind.AddReplace,
        (ChangeKind.Delete, false) => PropertyDiff.Types.Kind.Delete,
        (ChangeKind.Delete, true) => PropertyDiff.Types.Kind.DeleteReplace,
        (_, false) => PropertyDiff.Types.Kind.Update,
        _ => PropertyDiff.Types.Kind.UpdateReplace,
    };

    private static ChangeKind ChangeOf(JsonNode? before, JsonNode? after) => (before, after) switch
    {
        (null, not null) => ChangeKind.Add,
        (not null, null) => ChangeKind.Delete,
        _ => ChangeKind.Update,
    };

    private static CheckFailure Failure(PropertyProblem problem) =>
        new() { Property = JsonPaths.ToPulumi(problem.Path), Reason = problem.Message };

    public void Dispose()
    {
        _cancelled.Dispose();
        Log.Dispose();
    }
}
