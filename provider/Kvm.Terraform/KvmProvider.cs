using System.Text.Json.Nodes;
using Google.Protobuf;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model.Schema;
using Kvm.Model.Validation;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using Kvm.Terraform.Planning;
using Kvm.Terraform.Schema;
using Kvm.Terraform.Values;

namespace Kvm.Terraform;

/// <summary>Where the provider's lifecycle calls go: the agents, or a fake in tests.</summary>
public interface IProviderBackend
{
    /// <summary>The operations of a resource type; usable for validation before <see cref="Configure"/>.</summary>
    IResourceOperations? Resource(string typeName);

    /// <summary>The lookup behind a data source type.</summary>
    IDataSourceOperations? DataSource(string typeName);

    /// <summary>Connects to the agents the provider block names.</summary>
    void Configure(ProviderSettings settings);
}

/// <summary>
/// The tfplugin6 Provider service: every handler decodes, calls the planner or the shared
/// operations, and encodes. Thread-safe: Terraform calls concurrently.
/// </summary>
public sealed class KvmProvider(IProviderBackend backend)
{
    private const string Service = "/tfplugin6.Provider/";
    private static readonly TimeSpan DefaultCreateTimeout = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan DefaultUpdateTimeout = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan DefaultDeleteTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromMinutes(5);

    private CancellationTokenSource _stop = new();

    public static ServerCapabilities Capabilities => new() { GetProviderSchemaOptional = true, PlanDestroy = false };

    public void Map(GrpcRouter router)
    {
        router.Unary(Service + "GetMetadata", GetMetadata.Types.Request.Parser, (_, _) => Task.FromResult(Metadata()));
        router.Unary(Service + "GetProviderSchema", GetProviderSchema.Types.Request.Parser, (_, _) => Task.FromResult(ProviderSchema()));
        router.Unary(Service + "ValidateProviderConfig", ValidateProviderConfig.Types.Request.Parser, (r, _) => Task.FromResult(ValidateProvider(r)));
        router.Unary(Service + "ValidateResourceConfig", ValidateResourceConfig.Types.Request.Parser, (r, _) => Task.FromResult(ValidateResource(r)));
        router.Unary(Service + "ValidateDataResourceConfig", ValidateDataResourceConfig.Types.Request.Parser, (r, _) => Task.FromResult(ValidateDataSource(r)));
        router.Unary(Service + "UpgradeResourceState", UpgradeResourceState.Types.Request.Parser, (r, _) => Task.FromResult(Upgrade(r)));
        router.Unary(Service + "ConfigureProvider", ConfigureProvider.Types.Request.Parser, (r, _) => Task.FromResult(Configure(r)));
        router.Unary(Service + "ReadResource", ReadResource.Types.Request.Parser, (r, c) => ReadAsync(r, c.CancellationToken));
        router.Unary(Service + "PlanResourceChange", PlanResourceChange.Types.Request.Parser, (r, _) => Task.FromResult(Plan(r)));
        router.Unary(Service + "ApplyResourceChange", ApplyResourceChange.Types.Request.Parser, (r, c) => ApplyAsync(r, c.CancellationToken));
        router.Unary(Service + "ImportResourceState", ImportResourceState.Types.Request.Parser, (r, c) => ImportAsync(r, c.CancellationToken));
        router.Unary(Service + "ReadDataSource", ReadDataSource.Types.Request.Parser, (r, c) => ReadDataAsync(r, c.CancellationToken));
        router.Unary(Service + "GetFunctions", GetFunctions.Types.Request.Parser, (_, _) => Task.FromResult(new GetFunctions.Types.Response()));
        router.Unary(Service + "StopProvider", StopProvider.Types.Request.Parser, (_, _) => Task.FromResult(Stop()));
    }

    public static GetMetadata.Types.Response Metadata()
    {
        var response = new GetMetadata.Types.Response { ServerCapabilities = Capabilities };
        response.Resources.AddRange(TerraformSchema.ResourceTypeNames.Select(n => new GetMetadata.Types.ResourceMetadata { TypeName = n }));
        response.DataSources.AddRange(TerraformSchema.DataSourceTypeNames.Select(n => new GetMetadata.Types.DataSourceMetadata { TypeName = n }));
        return response;
    }

    public static GetProviderSchema.Types.Response ProviderSchema()
    {
        var response = new GetProviderSchema.Types.Response
        {
            Provider = new Protocol.Tfplugin6.Schema { Block = TerraformSchema.Provider.ToProto() },
            ServerCapabilities = Capabilities,
        };
        foreach (var resource in TerraformSchema.Resources)
            response.ResourceSchemas[resource.TypeName] = resource.ToProto();
        foreach (var dataSource in TerraformSchema.DataSources)
            response.DataSourceSchemas[dataSource.TypeName] = dataSource.ToProto();
        return response;
    }

    public ValidateProviderConfig.Types.Response ValidateProvider(ValidateProviderConfig.Types.Request request)
    {
        var response = new ValidateProviderConfig.Types.Response();
        try
        {
            var config = Decode(request.Config, TerraformSchema.Provider.ImpliedType);
            response.Diagnostics.AddRange(ProviderSettings.Validate(config));
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
        }
        return response;
    }

    public ValidateResourceConfig.Types.Response ValidateResource(ValidateResourceConfig.Types.Request request)
    {
        var response = new ValidateResourceConfig.Types.Response();
        var (resource, operations) = Resolve(request.TypeName);
        try
        {
            var config = Decode(request.Config, resource.Type);
            response.Diagnostics.AddRange(ConfigValidation.Validate(resource.Block.Attributes, operations, config));
            response.Diagnostics.AddRange(ValidateTimeouts(config));
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
        }
        return response;
    }

    public ValidateDataResourceConfig.Types.Response ValidateDataSource(ValidateDataResourceConfig.Types.Request request)
    {
        var response = new ValidateDataResourceConfig.Types.Response();
        var (dataSource, operations) = ResolveData(request.TypeName);
        try
        {
            var config = Decode(request.Config, dataSource.Type);
            var arguments = ModelValues.ToModelJson(config, dataSource.Block.Attributes);
            response.Diagnostics.AddRange(ConfigValidation.Filter(operations.Validate(arguments.Json), arguments.UnknownPaths).Select(Diagnostics.FromValidation));
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
        }
        return response;
    }

    public UpgradeResourceState.Types.Response Upgrade(UpgradeResourceState.Types.Request request)
    {
        var response = new UpgradeResourceState.Types.Response();
        var (resource, _) = Resolve(request.TypeName);
        if (request.Version > TerraformSchema.SchemaVersion)
        {
            response.Diagnostics.Add(Diagnostics.Error("State from a newer provider",
                $"The state of this {request.TypeName} was written by a newer terraform-provider-kvm (schema version {request.Version}); upgrade the provider."));
            return response;
        }
        if (request.RawState.Json.IsEmpty)
        {
            response.Diagnostics.Add(Diagnostics.Error("Unsupported state format", "The state is in the pre-0.12 flatmap format, which this provider never wrote."));
            return response;
        }
        try
        {
            // Attributes a later schema dropped are ignored; new ones start null.
            var state = CtyJson.Decode(request.RawState.Json.Span, resource.Type, ignoreUnknownAttributes: true);
            response.UpgradedState = Encode(state, resource.Type);
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
        }
        return response;
    }

    public ConfigureProvider.Types.Response Configure(ConfigureProvider.Types.Request request)
    {
        var response = new ConfigureProvider.Types.Response();
        try
        {
            var config = Decode(request.Config, TerraformSchema.Provider.ImpliedType);
            response.Diagnostics.AddRange(ProviderSettings.Validate(config));
            if (!Diagnostics.HasErrors(response.Diagnostics))
                backend.Configure(ProviderSettings.From(config));
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
        }
        return response;
    }

    public async Task<ReadResource.Types.Response> ReadAsync(ReadResource.Types.Request request, CancellationToken cancellationToken)
    {
        var response = new ReadResource.Types.Response { Private = request.Private };
        var (resource, operations) = Resolve(request.TypeName);
        CtyValue current;
        try
        {
            current = Decode(request.CurrentState, resource.Type);
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
            return response;
        }
        if (current.IsNull)
        {
            response.NewState = request.CurrentState;
            return response;
        }
        var host = ModelValues.StringAttr(current, TerraformSchema.Host) ?? "";
        var id = ModelValues.StringAttr(current, TerraformSchema.Id) ?? operations.IdOf(ModelValues.ToModelJson(current, resource.Block.Attributes).Json);
        try
        {
            using var timeout = Linked(cancellationToken, ReadTimeout);
            var json = await operations.ReadAsync(host, id, timeout.Token).ConfigureAwait(false);
            // The agent answers fingerprints for sensitive values: state keeps the clear value while it matches.
            if (json is not null)
                Kvm.Model.Secrets.Restore(json, ModelValues.ToModelJson(current, resource.Block.Attributes).Json, Kvm.Model.Schema.Schemas.For(operations.ModelType));
            var state = json is null ? CtyValue.Null(resource.Type) : ToState(resource, json, current);
            response.NewState = Encode(state, resource.Type);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            response.Diagnostics.AddRange(Failure($"Reading {request.TypeName} {id} failed", e));
            response.NewState = request.CurrentState;
        }
        return response;
    }

    public PlanResourceChange.Types.Response Plan(PlanResourceChange.Types.Request request)
    {
        var response = new PlanResourceChange.Types.Response { PlannedPrivate = request.PriorPrivate };
        var (resource, operations) = Resolve(request.TypeName);
        try
        {
            var prior = Decode(request.PriorState, resource.Type);
            var proposed = Decode(request.ProposedNewState, resource.Type);
            var config = Decode(request.Config, resource.Type);
            var outcome = Planner.Plan(resource, operations, prior, proposed, config);
            response.PlannedState = Encode(outcome.Planned, resource.Type);
            response.RequiresReplace.AddRange(outcome.RequiresReplace.Select(Diagnostics.ToProto));
            response.Diagnostics.AddRange(outcome.Diagnostics);
            if (!proposed.IsNull)
                response.Diagnostics.AddRange(ValidateTimeouts(config));
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
        }
        return response;
    }

    public async Task<ApplyResourceChange.Types.Response> ApplyAsync(ApplyResourceChange.Types.Request request, CancellationToken cancellationToken)
    {
        var response = new ApplyResourceChange.Types.Response { Private = request.PlannedPrivate };
        var (resource, operations) = Resolve(request.TypeName);
        CtyValue prior, planned;
        try
        {
            prior = Decode(request.PriorState, resource.Type);
            planned = Decode(request.PlannedState, resource.Type);
        }
        catch (CtyException e)
        {
            response.Diagnostics.Add(Codec(e));
            return response;
        }
        var priorJson = prior.IsNull ? null : ModelValues.ToModelJson(prior, resource.Block.Attributes).Json;
        if (planned.IsNull)
        {
            var host = ModelValues.StringAttr(prior, TerraformSchema.Host) ?? "";
            var id = ModelValues.StringAttr(prior, TerraformSchema.Id) ?? operations.IdOf(priorJson!);
            try
            {
                using var timeout = Linked(cancellationToken, Timeout(prior, "delete", DefaultDeleteTimeout));
                await operations.DeleteAsync(host, id, priorJson!, timeout.Token).ConfigureAwait(false);
                response.NewState = Encode(CtyValue.Null(resource.Type), resource.Type);
            }
            catch (Exception e)
            {
                response.Diagnostics.AddRange(Failure($"Deleting {request.TypeName} {id} failed", e));
                response.NewState = request.PriorState;
            }
            return response;
        }

        var desired = ModelValues.ToSpecJson(planned, resource.Block.Attributes);
        var plannedHost = ModelValues.StringAttr(planned, TerraformSchema.Host) ?? "";
        if (prior.IsNull)
        {
            try
            {
                using var timeout = Linked(cancellationToken, Timeout(planned, "create", DefaultCreateTimeout));
                var created = await operations.CreateAsync(plannedHost, desired, timeout.Token).ConfigureAwait(false);
                response.NewState = Encode(ToState(resource, created, planned), resource.Type);
            }
            catch (PartialCreateException e)
            {
                response.Diagnostics.AddRange(Failure($"Creating {request.TypeName} failed after it was created; it is kept in the state", e.InnerException!));
                response.NewState = Encode(ToState(resource, e.Created, planned), resource.Type);
            }
            catch (Exception e)
            {
                response.Diagnostics.AddRange(Failure($"Creating {request.TypeName} failed", e));
            }
            return response;
        }

        var priorId = ModelValues.StringAttr(prior, TerraformSchema.Id) ?? operations.IdOf(priorJson!);
        var priorHost = ModelValues.StringAttr(prior, TerraformSchema.Host) ?? "";
        var mover = priorHost != plannedHost ? operations as IMovableOperations : null; // the plan allowed a host change: a migration
        try
        {
            using var timeout = Linked(cancellationToken, Timeout(planned, "update", DefaultUpdateTimeout));
            JsonObject updated;
            try
            {
                updated = mover is null
                    ? await operations.UpdateAsync(plannedHost, priorId, priorJson!, desired, timeout.Token).ConfigureAwait(false)
                    : await mover.MoveAsync(priorHost, plannedHost, priorId, priorJson!, desired, timeout.Token).ConfigureAwait(false);
            }
            catch (MigrationSourceCleanupException e)
            {
                response.Diagnostics.Add(Diagnostics.Warning("The old host still has a copy of the VM", e.Message));
                updated = await operations.UpdateAsync(plannedHost, priorId, priorJson!, desired, timeout.Token).ConfigureAwait(false);
            }
            response.NewState = Encode(ToState(resource, updated, planned), resource.Type);
        }
        catch (Exception e)
        {
            response.Diagnostics.AddRange(Failure($"{(mover is null ? "Updating" : "Migrating")} {request.TypeName} {priorId} failed", e));
            // After a failed migration the VM is on one of the two hosts: the old one unless the move got through (the new
            // host is only asked when the old one no longer has it: a VM of the same vm_id there may be another one).
            response.NewState = mover is null
                ? await StateAfterFailureAsync(resource, operations, plannedHost, priorId, prior, cancellationToken).ConfigureAwait(false)
                : await StateAfterFailureAsync(resource, operations, priorHost, priorId, prior, cancellationToken, orNull: true).ConfigureAwait(false)
                    ?? await StateAfterFailureAsync(resource, operations, plannedHost, priorId, planned, cancellationToken).ConfigureAwait(false);
        }
        return response;
    }

    // Whatever part of a failed update was applied is real: record it, so the next plan shows what is left.
    private async Task<DynamicValue?> StateAfterFailureAsync(
        TfResourceType resource, IResourceOperations operations, string host, string id, CtyValue prior, CancellationToken cancellationToken, bool orNull = false)
    {
        try
        {
            using var timeout = Linked(cancellationToken, ReadTimeout);
            var json = await operations.ReadAsync(host, id, timeout.Token).ConfigureAwait(false);
            if (json is not null)
                return Encode(ToState(resource, json, prior), resource.Type);
            if (orNull)
                return null; // not there: the caller looks elsewhere
        }
        catch (Exception)
        {
            // The prior state is the best we know.
        }
        return Encode(prior, resource.Type);
    }

    public async Task<ImportResourceState.Types.Response> ImportAsync(ImportResourceState.Types.Request request, CancellationToken cancellationToken)
    {
        var response = new ImportResourceState.Types.Response();
        var (resource, operations) = Resolve(request.TypeName);
        if (!ImportIds.TryParse(resource, request.Id, out var host, out var id, out var expected))
        {
            response.Diagnostics.Add(Diagnostics.Error("Invalid import ID", $"\"{request.Id}\" is not an import ID of {request.TypeName}: expected {expected}."));
            return response;
        }
        try
        {
            using var timeout = Linked(cancellationToken, ReadTimeout);
            var json = await operations.ReadAsync(host, id, timeout.Token).ConfigureAwait(false);
            if (json is null)
            {
                var where = host.Length == 0 ? "the default host" : $"host \"{host}\"";
                response.Diagnostics.Add(Diagnostics.Error("Cannot import non-existent remote object", $"There is no {request.TypeName} \"{id}\" on {where}."));
                return response;
            }
            var hostValue = host.Length == 0 ? CtyValue.Null(CtyType.String) : CtyValue.String(host);
            var state = ModelValues.FromModelJson(json, resource.Block, Extras(resource, json, hostValue, null));
            response.ImportedResources.Add(new ImportResourceState.Types.ImportedResource { TypeName = request.TypeName, State = Encode(state, resource.Type) });
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            response.Diagnostics.AddRange(Failure($"Importing {request.TypeName} \"{request.Id}\" failed", e));
        }
        return response;
    }

    public async Task<ReadDataSource.Types.Response> ReadDataAsync(ReadDataSource.Types.Request request, CancellationToken cancellationToken)
    {
        var response = new ReadDataSource.Types.Response();
        var (dataSource, operations) = ResolveData(request.TypeName);
        try
        {
            var config = Decode(request.Config, dataSource.Type);
            var host = ModelValues.StringAttr(config, TerraformSchema.Host) ?? "";
            var arguments = ModelValues.ToModelJson(config, dataSource.Block.Attributes).Json;
            using var timeout = Linked(cancellationToken, ReadTimeout);
            var json = await operations.ReadAsync(host, arguments, timeout.Token).ConfigureAwait(false);
            var id = ModelValues.IdText(json["vm_id"] ?? json["hostname"]) ?? host;
            var state = ModelValues.FromModelJson(json, dataSource.Block, new Dictionary<string, CtyValue>
            {
                [TerraformSchema.Id] = CtyValue.String(id),
                [TerraformSchema.Host] = config.GetAttr(TerraformSchema.Host),
            });
            response.State = Encode(state, dataSource.Type);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            response.Diagnostics.AddRange(Failure($"Reading data source {request.TypeName} failed", e));
        }
        return response;
    }

    public StopProvider.Types.Response Stop()
    {
        var previous = Interlocked.Exchange(ref _stop, new CancellationTokenSource());
        previous.Cancel();
        previous.Dispose();
        return new StopProvider.Types.Response();
    }

    private CancellationTokenSource Linked(CancellationToken cancellationToken, TimeSpan timeout)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        cts.CancelAfter(timeout);
        return cts;
    }

    /// <summary>State from what the agent returned, keeping the provider-only attributes of <paramref name="basis"/>.</summary>
    private static CtyValue ToState(TfResourceType resource, JsonObject json, CtyValue basis) =>
        ModelValues.FromModelJson(json, resource.Block, Extras(resource, json, basis.GetAttr(TerraformSchema.Host),
            resource.HasTimeouts ? basis.GetAttr(TerraformSchema.Timeouts) : null));

    private static Dictionary<string, CtyValue> Extras(TfResourceType resource, JsonObject json, CtyValue host, CtyValue? timeouts)
    {
        var id = ModelValues.IdText(json[resource.IdAttribute]);
        var extras = new Dictionary<string, CtyValue>
        {
            [TerraformSchema.Id] = id is null ? CtyValue.Null(CtyType.String) : CtyValue.String(id),
            [TerraformSchema.Host] = host,
        };
        if (timeouts is not null)
            extras[TerraformSchema.Timeouts] = timeouts;
        return extras;
    }

    private static TimeSpan Timeout(CtyValue value, string operation, TimeSpan fallback)
    {
        if (!value.Type.HasAttribute(TerraformSchema.Timeouts))
            return fallback;
        var text = ModelValues.StringAttr(value.GetAttr(TerraformSchema.Timeouts), operation);
        return text is not null && Durations.TryParse(text, out var t) ? t : fallback;
    }

    private static IEnumerable<Diagnostic> ValidateTimeouts(CtyValue config)
    {
        if (config.IsNull || !config.IsKnown || !config.Type.HasAttribute(TerraformSchema.Timeouts))
            yield break;
        var timeouts = config.GetAttr(TerraformSchema.Timeouts);
        if (timeouts.IsNull || !timeouts.IsKnown)
            yield break;
        foreach (var (name, value) in timeouts.Entries)
        {
            if (value.IsKnown && !value.IsNull && !Durations.TryParse(value.AsString(), out _))
                yield return Diagnostics.Error("Invalid duration", $"timeouts.{name}: \"{value.AsString()}\" is not a duration such as \"30s\", \"10m\" or \"1h30m\".",
                    AttrPath.Root.Attr(TerraformSchema.Timeouts).Attr(name));
        }
    }

    private (TfResourceType, IResourceOperations) Resolve(string typeName)
    {
        var resource = TerraformSchema.FindResource(typeName);
        var operations = resource is null ? null : backend.Resource(typeName);
        if (resource is null || operations is null)
            throw new GrpcException(Protocol.Grpc.StatusCode.InvalidArgument, $"unknown resource type {typeName}");
        return (resource, operations);
    }

    private (TfDataSourceType, IDataSourceOperations) ResolveData(string typeName)
    {
        var dataSource = TerraformSchema.FindDataSource(typeName);
        var operations = dataSource is null ? null : backend.DataSource(typeName);
        if (dataSource is null || operations is null)
            throw new GrpcException(Protocol.Grpc.StatusCode.InvalidArgument, $"unknown data source type {typeName}");
        return (dataSource, operations);
    }

    /// <summary>Diagnostics for a failed operation: validation errors at their attributes, anything else as one error.</summary>
    public static IEnumerable<Diagnostic> Failure(string summary, Exception e)
    {
        IReadOnlyList<ValidationError> errors = e switch
        {
            ModelValidationException v => v.Errors,
            KvmApiException { Errors.Count: > 0 } k => [.. k.Errors.Select(x => new ValidationError(x.Attribute, x.Detail))],
            _ => [],
        };
        if (errors.Count > 0)
            return errors.Select(error => Diagnostics.Error(summary,
                error.Attribute.Length == 0 ? error.Detail : $"{error.Attribute}: {error.Detail}",
                error.Attribute.Length == 0 ? null : AttrPath.Parse(error.Attribute)));
        var detail = e switch
        {
            OperationCanceledException => "The operation was cancelled or ran out of time (see the `timeouts` block).",
            KvmApiException k => $"{k.Title}: {k.Detail}",
            HttpRequestException h => $"The agent could not be reached: {h.Message}",
            _ => e.Message,
        };
        return [Diagnostics.Error(summary, detail)];
    }

    public static DynamicValue Encode(CtyValue value, CtyType type) => new() { Msgpack = ByteString.CopyFrom(CtyMsgPack.Encode(value, type)) };

    public static CtyValue Decode(DynamicValue? value, CtyType type)
    {
        if (value is null)
            return CtyValue.Null(type);
        if (!value.Msgpack.IsEmpty)
            return CtyMsgPack.Decode(value.Msgpack.Span, type);
        if (!value.Json.IsEmpty)
            return CtyJson.Decode(value.Json.Span, type);
        return CtyValue.Null(type);
    }

    private static Diagnostic Codec(CtyException e) =>
        Diagnostics.Error("Invalid value", e.Detail, Diagnostics.FromCty(e.Path));
}

/// <summary>Import IDs: the resource's id, optionally prefixed by the host name (<c>lab2/100</c>, <c>lab2/default/data.qcow2</c>).</summary>
public static class ImportIds
{
    public static bool TryParse(TfResourceType resource, string text, out string host, out string id, out string expected)
    {
        // Volume and image ids are pool-scoped (<pool>/<name>): only a further segment names a host.
        var parts = resource.IdAttribute is "volume_id" or "image_id" or "snapshot_id" ? 2 : 1;
        var sample = resource.IdAttribute switch
        {
            "vm_id" => "\"<vm_id>\" or \"<host>/<vm_id>\"",
            "volume_id" or "image_id" => "\"<pool>/<name>\" or \"<host>/<pool>/<name>\"",
            "snapshot_id" => "\"<vm_id>/<name>\" or \"<host>/<vm_id>/<name>\"",
            _ => "\"<name>\" or \"<host>/<name>\"",
        };
        expected = sample;
        host = "";
        id = "";
        var segments = text.Split('/');
        if (segments.Any(s => s.Length == 0) || (segments.Length != parts && segments.Length != parts + 1))
            return false;
        if (segments.Length == parts + 1)
            host = segments[0];
        id = string.Join('/', segments[^parts..]);
        return resource.IdAttribute != "vm_id" || long.TryParse(id, out _);
    }
}
