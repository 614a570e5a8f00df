using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests.Harness;

/// <summary>Reads another resource's output while a program builds its inputs (an <c>Output&lt;T&gt;</c> in a real program).</summary>
internal delegate Value OutputOf(string resource, string property);

/// <summary>One resource a program registers: its type, name, inputs (which may read other resources' outputs) and options.</summary>
internal sealed record Goal(string Token, string Name, Func<OutputOf, Struct> Inputs)
{
    /// <summary>The <c>ignoreChanges</c> resource option, in the engine's property-path syntax.</summary>
    public IReadOnlyList<string> IgnoreChanges { get; init; } = [];

    /// <summary>The <c>deleteBeforeReplace</c> resource option; null leaves the choice to the provider's Diff.</summary>
    public bool? DeleteBeforeReplace { get; init; }

    /// <summary>The <c>import</c> resource option: adopt this id instead of creating.</summary>
    public string? ImportId { get; init; }
}

/// <summary>What the engine keeps per resource in the stack's state.</summary>
internal sealed record ResourceState(string Token, string Name, string Id, Struct Outputs, Struct Inputs)
{
    /// <summary>Reasons of an ErrorResourceInitFailed: the next up updates the resource even without a diff.</summary>
    public IReadOnlyList<string> InitErrors { get; init; } = [];
}

/// <summary>A step the engine took (or, in a preview, would take) for one resource.</summary>
internal sealed record StepRecord(string Resource, string Op);

/// <summary>A deployment that failed the way the engine reports it: the step, and the provider's error.</summary>
internal sealed class DeploymentFailedException(string resource, string op, GrpcException inner)
    : Exception($"{op} of {resource} failed: {inner.Message}", inner)
{
    public string Resource { get; } = resource;
    public string Op { get; } = op;
    public GrpcException Error { get; } = inner;
}

/// <summary>
/// The engine's step generator over one configured plugin (research/pulumi.md §4, P:step_generator.go):
/// resources are registered in program order; each gets Check (olds = last inputs, or <c>{}</c>),
/// then Diff against its old outputs, then Create/Update/replace; a preview makes the same calls
/// with <c>preview=true</c>, never deletes, and feeds dependents the unknowns its Creates report.
/// <c>ignoreChanges</c> resets the ignored new inputs to the old ones before Check and is passed to
/// Diff and Update. Replacement creates first and deletes the old resource at the end of the
/// deployment, unless Diff (or the option) asks to delete first. ErrorResourceInitFailed keeps the
/// resource with its init errors; the next up updates it even when Diff says nothing changed.
/// Refresh is Read with the old outputs and inputs (an empty id removes the resource), then a Diff of
/// what was read against the old inputs to show drift; destroy is
/// Delete in reverse registration order. Import is Read by id, Check with the read inputs as olds,
/// and a Diff that must be empty.
/// </summary>
internal sealed class Deployment(EngineSession session)
{
    private readonly List<ResourceState> _state = [];

    // Replaced resources still to delete (kept across a failed deployment, as the engine marks them).
    private readonly List<ResourceState> _pendingDeletes = [];

    public EngineSession Session { get; } = session;

    /// <summary>The stack's state, in registration order.</summary>
    public IReadOnlyList<ResourceState> State => _state;

    /// <summary>Every step of the last operation, in order.</summary>
    public List<StepRecord> Steps { get; } = [];

    /// <summary>Every provider call of the last operation, as <c>Method resource</c>.</summary>
    public List<string> Calls { get; } = [];

    // The outputs the last up or preview produced per resource (a preview's Creates report unknowns).
    private Dictionary<string, (Struct Outputs, bool Planned)> _outputs = new(StringComparer.Ordinal);

    /// <summary>What each resource's outputs were in the last up or preview, as its dependents saw them.</summary>
    public IReadOnlyDictionary<string, Struct> LastOutputs => _outputs.ToDictionary(p => p.Key, p => p.Value.Outputs, StringComparer.Ordinal);

    public ResourceState this[string name] => _state.Single(r => r.Name == name);

    public ResourceState? Find(string name) => _state.SingleOrDefault(r => r.Name == name);

    /// <summary><c>pulumi preview</c>: the steps an up would take; nothing reaches the agent but reads.</summary>
    public Task<IReadOnlyList<StepRecord>> PreviewAsync(IReadOnlyList<Goal> program) => RunAsync(program, preview: true);

    /// <summary><c>pulumi up</c>: a preview first (as the CLI does), then the deployment.</summary>
    public async Task<IReadOnlyList<StepRecord>> UpAsync(IReadOnlyList<Goal> program, bool skipPreview = false)
    {
        if (!skipPreview)
            await RunAsync(program, preview: true);
        return await RunAsync(program, preview: false);
    }

    private async Task<IReadOnlyList<StepRecord>> RunAsync(IReadOnlyList<Goal> program, bool preview)
    {
        Steps.Clear();
        Calls.Clear();
        var working = _state.ToList();
        try
        {
            return await RunStepsAsync(program, preview, working);
        }
        finally
        {
            // Steps that finished stay in the state even when a later one fails.
            if (!preview)
                Commit(working);
        }
    }

    private async Task<IReadOnlyList<StepRecord>> RunStepsAsync(IReadOnlyList<Goal> program, bool preview, List<ResourceState> working)
    {
        // The outputs this deployment has produced so far; in a preview, Creates report unknowns.
        var planned = _outputs = new Dictionary<string, (Struct Outputs, bool Planned)>(StringComparer.Ordinal);
        var pendingDeletes = _pendingDeletes;

        Value Output(string resource, string property)
        {
            if (!planned.TryGetValue(resource, out var outputs))
                throw new InvalidOperationException($"{resource} is not registered before its dependent");
            if (outputs.Outputs.Fields.TryGetValue(property, out var value))
                return value;
            // A top-level output a preview omitted is unknown to the engine.
            return outputs.Planned ? Value.ForString(Sentinels.Unknown) : Value.ForNull();
        }

        foreach (var goal in program)
        {
            var old = working.SingleOrDefault(r => r.Name == goal.Name);
            var news = goal.Inputs(Output);
            if (old is null && goal.ImportId is { } importId)
            {
                var imported = await ImportAsync(goal, importId, news, preview);
                working.Add(imported);
                planned[goal.Name] = (imported.Outputs, false);
                continue;
            }
            if (old is not null && goal.IgnoreChanges.Count > 0)
                news = ProcessIgnoreChanges(news, old.Inputs, goal.IgnoreChanges);

            var check = await Call("Check", goal.Name, () => Session.CheckAsync(goal.Token, goal.Name, old?.Inputs, news));
            if (check.Failures.Count > 0)
                throw new DeploymentFailedException(goal.Name, "check", new GrpcException(StatusCode.InvalidArgument,
                    string.Join("; ", check.Failures.Select(f => $"{f.Property}: {f.Reason}"))));

            if (old is null)
            {
                Steps.Add(new StepRecord(goal.Name, "create"));
                var created = await CreateAsync(goal, check.Inputs, preview, working);
                planned[goal.Name] = (created.Outputs, preview);
                continue;
            }

            var diff = await Call("Diff", goal.Name, () => Session.DiffAsync(goal.Token, goal.Name, old.Id, old.Outputs, old.Inputs, check.Inputs, goal.IgnoreChanges));
            var changes = diff.Changes switch
            {
                DiffResponse.Types.DiffChanges.DiffNone => false,
                DiffResponse.Types.DiffChanges.DiffSome => true,
                // UNKNOWN: the engine compares old and new inputs itself.
                _ => !old.Inputs.Equals(check.Inputs),
            };
            var replace = diff.Replaces.Count > 0 || diff.DetailedDiff.Values.Any(d => d.Kind is
                PropertyDiff.Types.Kind.AddReplace or PropertyDiff.Types.Kind.DeleteReplace or PropertyDiff.Types.Kind.UpdateReplace);
            if (!changes && old.InitErrors.Count == 0)
            {
                Steps.Add(new StepRecord(goal.Name, "same"));
                // DIFF_NONE still stores the new checked inputs.
                Replace(working, old with { Inputs = check.Inputs });
                planned[goal.Name] = (old.Outputs, false);
                continue;
            }
            if (replace)
            {
                var deleteFirst = goal.DeleteBeforeReplace ?? diff.DeleteBeforeReplace;
                Steps.Add(new StepRecord(goal.Name, deleteFirst ? "delete-replaced" : "replace"));
                var recheck = await Call("Check", goal.Name, () => Session.CheckAsync(goal.Token, goal.Name, null, news));
                // The replacement takes the old resource's place in the state, so dependents still come after it.
                var position = working.IndexOf(old);
                if (!preview && deleteFirst)
                {
                    await DeleteAsync(old);
                    working.Remove(old);
                }
                else if (!preview)
                {
                    pendingDeletes.Add(old);
                    working.Remove(old);
                }
                var created = await CreateAsync(goal, recheck.Inputs, preview, working, position);
                planned[goal.Name] = (created.Outputs, preview);
                continue;
            }

            Steps.Add(new StepRecord(goal.Name, "update"));
            UpdateResponse updated;
            try
            {
                updated = await Call("Update", goal.Name, () => Session.UpdateAsync(goal.Token, goal.Name, old.Id, old.Outputs, old.Inputs, check.Inputs, preview, goal.IgnoreChanges));
            }
            catch (GrpcException e) when (!preview && e.GetDetail<ErrorResourceInitFailed>() is { } partial)
            {
                Replace(working, old with { Outputs = partial.Properties ?? old.Outputs, Inputs = check.Inputs, InitErrors = [.. partial.Reasons] });
                Commit(working);
                throw new DeploymentFailedException(goal.Name, "update", e);
            }
            var state = old with { Outputs = updated.Properties ?? new Struct(), Inputs = check.Inputs, InitErrors = [] };
            if (!preview)
                Replace(working, state);
            planned[goal.Name] = (state.Outputs, preview);
        }

        if (!preview)
        {
            // Resources the program no longer registers go in reverse order, then replaced ones.
            foreach (var removed in working.Where(r => program.All(g => g.Name != r.Name)).Reverse().ToList())
            {
                Steps.Add(new StepRecord(removed.Name, "delete"));
                await DeleteAsync(removed);
                working.Remove(removed);
            }
            foreach (var replaced in pendingDeletes.AsEnumerable().Reverse().ToList())
            {
                Steps.Add(new StepRecord(replaced.Name, "delete-replaced"));
                await DeleteAsync(replaced);
                pendingDeletes.Remove(replaced);
            }
            Commit(working);
        }
        return [.. Steps];
    }

    private async Task<ResourceState> CreateAsync(Goal goal, Struct inputs, bool preview, List<ResourceState> working, int position = -1)
    {
        void Keep(ResourceState state)
        {
            if (position >= 0 && position <= working.Count)
                working.Insert(position, state);
            else
                working.Add(state);
        }

        CreateResponse created;
        try
        {
            created = await Call("Create", goal.Name, () => Session.CreateAsync(goal.Token, goal.Name, inputs, preview));
        }
        catch (GrpcException e) when (!preview && e.GetDetail<ErrorResourceInitFailed>() is { } partial)
        {
            if (string.IsNullOrEmpty(partial.Id))
                throw new InvalidOperationException("ErrorResourceInitFailed from Create without an id", e);
            Keep(new ResourceState(goal.Token, goal.Name, partial.Id, partial.Properties ?? new Struct(), inputs) { InitErrors = [.. partial.Reasons] });
            Commit(working);
            throw new DeploymentFailedException(goal.Name, "create", e);
        }
        if (preview)
            return new ResourceState(goal.Token, goal.Name, created.Id, created.Properties ?? new Struct(), inputs);
        if (string.IsNullOrEmpty(created.Id))
            throw new InvalidOperationException($"provider did not return an ID from Create of {goal.Name}");
        var state = new ResourceState(goal.Token, goal.Name, created.Id, created.Properties ?? new Struct(), inputs);
        Keep(state);
        return state;
    }

    private async Task<ResourceState> ImportAsync(Goal goal, string id, Struct news, bool preview)
    {
        Steps.Add(new StepRecord(goal.Name, "import"));
        var read = await Call("Read", goal.Name, () => Session.ReadAsync(goal.Token, goal.Name, id, null, null));
        if (read.Properties is null || string.IsNullOrEmpty(read.Id))
            throw new DeploymentFailedException(goal.Name, "import", new GrpcException(StatusCode.NotFound, $"resource '{id}' does not exist"));
        if (read.Inputs is null)
            throw new DeploymentFailedException(goal.Name, "import", new GrpcException(StatusCode.Unimplemented, "provider does not support importing"));
        var check = await Call("Check", goal.Name, () => Session.CheckAsync(goal.Token, goal.Name, read.Inputs, news));
        if (check.Failures.Count > 0)
            throw new DeploymentFailedException(goal.Name, "import", new GrpcException(StatusCode.InvalidArgument,
                string.Join("; ", check.Failures.Select(f => $"{f.Property}: {f.Reason}"))));
        var diff = await Call("Diff", goal.Name, () => Session.DiffAsync(goal.Token, goal.Name, read.Id, read.Properties, read.Inputs, check.Inputs, goal.IgnoreChanges));
        // A diff is a warning in a preview and an error in an up.
        if (!preview && diff.Changes == DiffResponse.Types.DiffChanges.DiffSome)
            throw new DeploymentFailedException(goal.Name, "import", new GrpcException(StatusCode.FailedPrecondition,
                "inputs to import do not match the existing resource: " + string.Join(", ", diff.Diffs)));
        return new ResourceState(goal.Token, goal.Name, read.Id, read.Properties, check.Inputs);
    }

    /// <summary><c>pulumi refresh</c>: Read every resource with its old outputs and inputs; an empty id drops it.</summary>
    public async Task RefreshAsync()
    {
        Steps.Clear();
        Calls.Clear();
        foreach (var resource in _state.ToList())
        {
            ReadResponse read;
            try
            {
                read = await Call("Read", resource.Name, () => Session.ReadAsync(resource.Token, resource.Name, resource.Id, resource.Outputs, resource.Inputs));
            }
            catch (GrpcException e) when (e.GetDetail<ErrorResourceInitFailed>() is { } partial)
            {
                // On refresh a partial failure is a warning; its state and reasons are kept.
                Replace(_state, resource with { Outputs = partial.Properties ?? resource.Outputs, InitErrors = [.. partial.Reasons] });
                continue;
            }
            if (string.IsNullOrEmpty(read.Id))
            {
                Steps.Add(new StepRecord(resource.Name, "refresh-gone"));
                _state.Remove(resource);
                continue;
            }
            // The engine renders drift with a Diff of the read state against the old inputs.
            var readInputs = read.Inputs ?? resource.Inputs;
            var drift = await Call("Diff", resource.Name, () => Session.DiffAsync(resource.Token, resource.Name, read.Id, read.Properties ?? new Struct(), readInputs, resource.Inputs));
            Steps.Add(new StepRecord(resource.Name, drift.Changes == DiffResponse.Types.DiffChanges.DiffSome ? "refresh-drift" : "refresh"));
            Replace(_state, resource with { Id = read.Id, Outputs = read.Properties ?? new Struct(), Inputs = readInputs });
        }
    }

    /// <summary><c>pulumi destroy</c>: Delete in reverse registration order; no Check, no Diff.</summary>
    public async Task DestroyAsync()
    {
        Steps.Clear();
        Calls.Clear();
        foreach (var resource in _state.AsEnumerable().Reverse().Concat(_pendingDeletes).ToList())
        {
            Steps.Add(new StepRecord(resource.Name, "delete"));
            await DeleteAsync(resource);
            _state.Remove(resource);
            _pendingDeletes.Remove(resource);
        }
    }

    private async Task DeleteAsync(ResourceState resource)
    {
        try
        {
            await Call("Delete", resource.Name, () => Session.DeleteAsync(resource.Token, resource.Name, resource.Id, resource.Outputs, resource.Inputs));
        }
        catch (GrpcException e)
        {
            // A failed delete leaves the resource in the state.
            throw new DeploymentFailedException(resource.Name, "delete", e);
        }
    }

    private async Task<T> Call<T>(string method, string resource, Func<Task<T>> call)
    {
        Calls.Add($"{method} {resource}");
        return await call();
    }

    private void Commit(List<ResourceState> working)
    {
        _state.Clear();
        _state.AddRange(working);
    }

    private static void Replace(List<ResourceState> list, ResourceState state)
    {
        var index = list.FindIndex(r => r.Name == state.Name);
        list[index] = state;
    }

    /// <summary>
    /// The engine's processIgnoreChanges: every ignored path gets the old input's value (or is
    /// removed when the old inputs lack it). Paths use the engine's syntax, e.g. <c>disks["scsi0"].sizeGib</c>.
    /// </summary>
    public static Struct ProcessIgnoreChanges(Struct news, Struct oldInputs, IEnumerable<string> ignoreChanges)
    {
        var result = news.Clone();
        foreach (var path in ignoreChanges)
        {
            var segments = ParsePath(path);
            var oldValue = Get(Value.ForStruct(oldInputs), segments);
            var parent = Get(Value.ForStruct(result), segments[..^1]);
            if (parent is not { KindCase: Value.KindOneofCase.StructValue })
            {
                if (oldValue is null)
                    continue;
                throw new InvalidOperationException($"cannot ignore changes to {path}: one or more elements of the path are missing");
            }
            if (oldValue is null)
                parent.StructValue.Fields.Remove(segments[^1]);
            else
                parent.StructValue.Fields[segments[^1]] = oldValue.Clone();
        }
        return result;
    }

    private static Value? Get(Value root, IReadOnlyList<string> segments)
    {
        var node = root;
        foreach (var segment in segments)
        {
            if (node.KindCase != Value.KindOneofCase.StructValue || !node.StructValue.Fields.TryGetValue(segment, out var next))
                return null;
            node = next;
        }
        return node;
    }

    // name.name, name["key"]: enough of the engine's PropertyPath for maps and objects.
    private static string[] ParsePath(string path)
    {
        var segments = new List<string>();
        var i = 0;
        while (i < path.Length)
        {
            if (path[i] == '.')
                i++;
            if (path[i] == '[')
            {
                var close = path.IndexOf("\"]", i, StringComparison.Ordinal);
                segments.Add(path[(i + 2)..close]);
                i = close + 2;
                continue;
            }
            var end = path.IndexOfAny(['.', '['], i);
            end = end < 0 ? path.Length : end;
            segments.Add(path[i..end]);
            i = end;
        }
        return [.. segments];
    }
}
