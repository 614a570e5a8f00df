using System.Text.Json;
using Kvm.Agent.Problems;
using Kvm.Agent.Storage;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Agent.Networks;

/// <summary>
/// The networks: bridges the agent created (<c>type = bridge</c>, owned: changed and deleted by us) and bridges
/// it adopted (<c>type = existing</c>: used, never changed or deleted). Definitions live in
/// <c>&lt;data-dir&gt;/networks/&lt;name&gt;.json</c>. Every other interface on the host is left alone.
/// </summary>
public sealed class Bridges
{
    private readonly IpLink _ip;
    private readonly NetworkOptions _options;
    private readonly Dnsmasq _dnsmasq;
    private readonly Nat _nat;
    private readonly SortedDictionary<string, NetworkSpec> _networks = new(StringComparer.Ordinal);

    /// <summary>Loads the network definitions; changes nothing on the host.</summary>
    public Bridges(IpLink ip, NetworkOptions options, Dnsmasq dnsmasq, Nat nat, ILogger<Bridges> logger)
    {
        _ip = ip;
        _options = options;
        _dnsmasq = dnsmasq;
        _nat = nat;
        if (!Directory.Exists(options.DefinitionsDir))
            return;
        foreach (var file in Directory.EnumerateFiles(options.DefinitionsDir, "*.json"))
        {
            try
            {
                var spec = JsonSerializer.Deserialize(File.ReadAllBytes(file), ModelJsonContext.Default.NetworkSpec);
                if (spec?.Name != Path.GetFileNameWithoutExtension(file) || Validator.Validate(spec).Count > 0)
                    throw new InvalidDataException("the definition does not match its file name or is invalid");
                _networks[spec.Name] = spec;
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
            {
                logger.LogWarning("Ignoring network definition {File}: {Reason}", file, e.Message);
            }
        }
    }

    /// <summary>
    /// Serialises every change to bridges and their ports (taps included), so a bridge cannot lose its last
    /// port check to a tap joining at the same moment.
    /// </summary>
    internal SemaphoreSlim Gate { get; } = new(1, 1);

    /// <summary>Every network with its live state.</summary>
    public async Task<List<Network>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new List<Network>();
        foreach (var spec in Snapshot())
            result.Add(Describe(spec, await _ip.ShowAsync(spec.Name!, cancellationToken)));
        return result;
    }

    /// <summary>One network and its ETag.</summary>
    public async Task<(Network Network, string ETag)> GetAsync(string name, CancellationToken cancellationToken)
    {
        CheckName(name);
        var spec = Find(name) ?? throw NotFound(name);
        return (Describe(spec, await _ip.ShowAsync(name, cancellationToken)), ETagOf(spec));
    }

    /// <summary>Creates a bridge, or adopts an existing one.</summary>
    public async Task<Network> CreateAsync(NetworkSpec spec, CancellationToken cancellationToken)
    {
        ThrowIfInvalid(Validator.Validate(spec));
        var name = spec.Name!;
        if (spec.Nat == true)
            await _nat.RequireAllowedAsync(cancellationToken);
        await Gate.WaitAsync(cancellationToken);
        try
        {
            if (Find(name) is not null)
                throw AgentProblemException.Conflict($"A network named \"{name}\" exists already.");
            var link = await _ip.ShowAsync(name, cancellationToken);
            if (!Owned(spec))
            {
                if (link is null)
                    throw AgentProblemException.Invalid("name", $"there is no interface \"{name}\" on the host; an existing bridge must be there to be adopted.");
                if (!link.IsBridge)
                    throw AgentProblemException.Invalid("name", $"\"{name}\" is {Describe(link)}, not a bridge; only bridges can be adopted.");
            }
            else if (link is not null)
            {
                throw link.IsBridge
                    ? AgentProblemException.Conflict($"A bridge \"{name}\" exists already and the agent did not create it; adopt it with type = \"existing\".")
                    : AgentProblemException.Invalid("name", $"\"{name}\" is {Describe(link)} on the host; the agent only creates bridges with names no interface has.");
            }
            else
            {
                await AddBridgeAsync(spec, cancellationToken);
                try
                {
                    await ApplyAsync(spec, previousAddress: null, cancellationToken);
                    await ApplyServicesAsync(spec, null, cancellationToken);
                    Save(spec);
                }
                catch
                {
                    // A bridge without a definition would be an interface nobody owns: take it back down, with its services.
                    await RemoveServicesAsync(spec);
                    await _ip.RunAsync(["link", "del", "dev", name], CancellationToken.None);
                    throw;
                }
                return Describe(spec, await _ip.ShowAsync(name, cancellationToken));
            }
            Save(spec);
            return Describe(spec, await _ip.ShowAsync(name, cancellationToken));
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Applies mtu, address and vlan_filtering to an owned bridge, live.</summary>
    public async Task<Network> UpdateAsync(string name, NetworkSpec spec, string? ifMatch, CancellationToken cancellationToken)
    {
        CheckName(name);
        ThrowIfInvalid(Validator.Validate(spec));
        if (spec.Nat == true)
            await _nat.RequireAllowedAsync(cancellationToken);
        await Gate.WaitAsync(cancellationToken);
        try
        {
            var before = Find(name) ?? throw NotFound(name);
            ModelHttp.CheckIfMatch(ifMatch, ETagOf(before));
            var replace = Changes.Classify(before, spec).Where(c => c.Kind == UpdateKind.Replace).Select(c => c.Attribute).ToList();
            if (replace.Count > 0)
                throw new AgentProblemException(409, ProblemTypes.RequiresReplacement, "Requires replacement",
                    $"Changing {string.Join(", ", replace)} of network \"{name}\" needs a new network.",
                    [.. replace.Select(a => new ProblemError(a, "cannot change in place; the network must be re-created."))]);
            if (Owned(spec))
            {
                await EnsureAsync(spec, before.Address, cancellationToken);
                try
                {
                    await ApplyServicesAsync(spec, before, cancellationToken);
                }
                catch
                {
                    // Back to the services of the definition that stays.
                    try { await ApplyServicesAsync(before, spec, CancellationToken.None); }
                    catch (AgentProblemException) { }
                    throw;
                }
            }
            Save(spec);
            return Describe(spec, await _ip.ShowAsync(name, cancellationToken));
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Deletes an owned bridge that has no ports, or forgets an adopted one (which stays on the host).</summary>
    public async Task DeleteAsync(string name, string? ifMatch, CancellationToken cancellationToken)
    {
        CheckName(name);
        await Gate.WaitAsync(cancellationToken);
        try
        {
            var spec = Find(name) ?? throw NotFound(name);
            ModelHttp.CheckIfMatch(ifMatch, ETagOf(spec));
            if (Owned(spec) && await _ip.ShowAsync(name, cancellationToken) is { IsBridge: true })
            {
                var ports = await _ip.PortsAsync(name, cancellationToken);
                if (ports.Count > 0)
                    throw AgentProblemException.Conflict($"Bridge \"{name}\" still has {string.Join(", ", ports)} attached; stop or detach those VMs first.");
                await RemoveServicesAsync(spec);
                await _ip.RunCheckedAsync(["link", "del", "dev", name], cancellationToken);
            }
            else if (Owned(spec))
            {
                await RemoveServicesAsync(spec);
            }
            File.Delete(DefinitionPath(name));
            SafeFile.FsyncDirectory(_options.DefinitionsDir);
            lock (_networks)
                _networks.Remove(name);
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>
    /// The bridge a tap may join: a network the agent manages, present on the host (an owned bridge that
    /// vanished, e.g. after a host reboot, is made again). Call with <see cref="Gate"/> held.
    /// </summary>
    internal async Task<LinkState> RequireBridgeAsync(string name, CancellationToken cancellationToken)
    {
        var spec = Find(name) ?? throw AgentProblemException.InvalidState(
            $"\"{name}\" is not a network the agent manages; create a kvm_network (type = \"existing\" adopts a host bridge).");
        if (Owned(spec))
        {
            var state = await EnsureAsync(spec, spec.Address, cancellationToken);
            // A bridge made again (host reboot) gets its dnsmasq again; a running one is left alone.
            if (NetworkServiceRules.WantsDnsmasq(spec) && _dnsmasq.PidOf(spec.Name!) is null)
                await _dnsmasq.EnsureAsync(spec, cancellationToken);
            return state;
        }
        var link = await _ip.ShowAsync(name, cancellationToken);
        if (link is not { IsBridge: true })
            throw AgentProblemException.InvalidState($"The adopted bridge \"{name}\" is missing from the host.");
        return link;
    }

    /// <summary>Refuses (422) a name the model does not allow for interfaces; it ends up in argv and file names.</summary>
    public static void CheckName(string name)
    {
        if (!Validator.Matches(Patterns.InterfaceName, name))
            throw AgentProblemException.Invalid("name", $"\"{Validator.Printable(name)}\" is not valid: expected {Patterns.InterfaceNameText}.");
    }

    private async Task<LinkState> EnsureAsync(NetworkSpec spec, string? previousAddress, CancellationToken cancellationToken)
    {
        var name = spec.Name!;
        var link = await _ip.ShowAsync(name, cancellationToken);
        if (link is null)
        {
            await AddBridgeAsync(spec, cancellationToken);
            previousAddress = null;
        }
        else if (!link.IsBridge)
        {
            throw AgentProblemException.InvalidState($"\"{name}\" is now {Describe(link)}, not the agent's bridge; the agent leaves it alone.");
        }
        await ApplyAsync(spec, previousAddress, cancellationToken);
        return (await _ip.ShowAsync(name, cancellationToken))!;
    }

    private async Task ApplyServicesAsync(NetworkSpec spec, NetworkSpec? previous, CancellationToken cancellationToken)
    {
        await _dnsmasq.EnsureAsync(spec, cancellationToken);
        await _nat.EnsureAsync(spec, previous, cancellationToken);
    }

    private async Task RemoveServicesAsync(NetworkSpec spec)
    {
        await _dnsmasq.StopAsync(spec.Name!, removeFiles: true);
        if (spec.Nat == true)
            await _nat.RemoveAsync(spec.Name!, CancellationToken.None);
    }

    /// <summary>At agent start: adopts the dnsmasqs still serving and starts the missing ones of existing bridges.</summary>
    public async Task<int> AdoptServicesAsync(CancellationToken cancellationToken)
    {
        await Gate.WaitAsync(cancellationToken);
        try
        {
            return await _dnsmasq.AdoptAsync(Snapshot().Where(Owned), _ip, cancellationToken);
        }
        finally
        {
            Gate.Release();
        }
    }

    private Task AddBridgeAsync(NetworkSpec spec, CancellationToken cancellationToken) =>
        // vlan_filtering is only named when wanted: kernels without CONFIG_BRIDGE_VLAN_FILTERING refuse even "0".
        spec.VlanFiltering == true
            ? SetVlanFilteringAsync(["link", "add", "name", spec.Name!, "type", "bridge"], true, cancellationToken)
            : _ip.RunCheckedAsync(["link", "add", "name", spec.Name!, "type", "bridge"], cancellationToken);

    private async Task SetVlanFilteringAsync(IReadOnlyList<string> args, bool on, CancellationToken cancellationToken)
    {
        var result = await _ip.RunAsync([.. args, "vlan_filtering", on ? "1" : "0"], cancellationToken);
        if (result.Ok)
            return;
        if (result.StdErr.Contains("not supported", StringComparison.OrdinalIgnoreCase))
            throw AgentProblemException.Invalid("vlan_filtering", "this host's kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); leave it false.");
        throw AgentProblemException.HostCommand($"ip {args[0]} {args[1]} failed: {result.StdErr.Trim()}");
    }

    private async Task ApplyAsync(NetworkSpec spec, string? previousAddress, CancellationToken cancellationToken)
    {
        var name = spec.Name!;
        var link = await _ip.ShowAsync(name, cancellationToken)
            ?? throw AgentProblemException.HostCommand($"Bridge \"{name}\" vanished while the agent configured it.");
        // VLAN filtering first: it is the step a host refuses (kernels without it), and a refusal must
        // leave the bridge as it was, not with the new MTU already set.
        if ((spec.VlanFiltering == true) != link.VlanFiltering)
            await SetVlanFilteringAsync(["link", "set", "dev", name, "type", "bridge"], spec.VlanFiltering == true, cancellationToken);
        if (spec.Mtu is { } mtu && link.Mtu != mtu)
            await _ip.RunCheckedAsync(["link", "set", "dev", name, "mtu", mtu.ToString(System.Globalization.CultureInfo.InvariantCulture)], cancellationToken);
        // Only the address the agent set before is removed: others on the bridge are somebody else's.
        if (previousAddress is not null && previousAddress != spec.Address)
        {
            var removed = await _ip.RunAsync(["addr", "del", previousAddress, "dev", name], cancellationToken);
            if (!removed.Ok && !removed.StdErr.Contains("Cannot assign", StringComparison.OrdinalIgnoreCase))
                throw AgentProblemException.HostCommand($"ip addr del failed: {removed.StdErr.Trim()}");
        }
        if (spec.Address is { } address)
            await _ip.RunCheckedAsync(["addr", "replace", address, "dev", name], cancellationToken);
        if (!link.AdminUp)
            await _ip.RunCheckedAsync(["link", "set", "dev", name, "up"], cancellationToken);
    }

    private Network Describe(NetworkSpec spec, LinkState? link) => new()
    {
        Name = spec.Name,
        Type = spec.Type,
        Mtu = spec.Mtu,
        Address = spec.Address,
        VlanFiltering = spec.VlanFiltering,
        Dhcp = spec.Dhcp,
        Dns = spec.Dns,
        Nat = spec.Nat,
        Owned = Owned(spec),
        DnsmasqPid = NetworkServiceRules.WantsDnsmasq(spec) ? _dnsmasq.PidOf(spec.Name!) : null,
        LeaseFile = spec.Dhcp is { Enabled: not false } ? _dnsmasq.PathsFor(spec.Name!).Leases : null,
        // Admin state: a bridge without a running VM's port has no carrier, so its operstate says "down" while it is fine.
        State = link is null || !link.IsBridge ? "missing" : link.AdminUp ? "up" : "down",
        EffectiveMtu = link is { IsBridge: true } ? link.Mtu : null,
    };

    private static string Describe(LinkState link) => link.Kind switch
    {
        "" or "ether" => "a physical interface",
        "loopback" => "the loopback interface",
        var kind => $"a {kind} interface",
    };

    private static bool Owned(NetworkSpec spec) => (spec.Type ?? "bridge") == "bridge";

    private NetworkSpec? Find(string name)
    {
        lock (_networks)
            return _networks.GetValueOrDefault(name);
    }

    private List<NetworkSpec> Snapshot()
    {
        lock (_networks)
            return [.. _networks.Values];
    }

    private void Save(NetworkSpec spec)
    {
        SafeFile.WriteAtomic(DefinitionPath(spec.Name!), JsonSerializer.SerializeToUtf8Bytes(spec, ModelJsonContext.Default.NetworkSpec));
        lock (_networks)
            _networks[spec.Name!] = spec;
    }

    private static string ETagOf(NetworkSpec spec) => ModelHttp.ETagOf(JsonSerializer.SerializeToUtf8Bytes(spec, ModelJsonContext.Default.NetworkSpec));

    private string DefinitionPath(string name) => Path.Combine(_options.DefinitionsDir, name + ".json");

    private static AgentProblemException NotFound(string name) => AgentProblemException.NotFound($"No network named \"{name}\".");

    private static void ThrowIfInvalid(IReadOnlyList<ValidationError> errors)
    {
        if (errors.Count > 0)
            throw AgentProblemException.Validation(errors.Select(e => new ProblemError(e.Attribute, e.Detail)));
    }
}
