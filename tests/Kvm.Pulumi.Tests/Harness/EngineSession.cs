using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests.Harness;

/// <summary>
/// The engine's calls to one provider plugin, with the olds/news/old_inputs conventions of its
/// step generator (research/pulumi.md §4), over a started <see cref="PluginProcess"/>.
/// </summary>
internal sealed class EngineSession : IAsyncDisposable
{
    public const string Stack = "test";
    public const string Project = "kvm-tests";

    private EngineSession(FakeEngine engine, PluginProcess plugin)
    {
        Engine = engine;
        Plugin = plugin;
    }

    public FakeEngine Engine { get; }

    public PluginProcess Plugin { get; }

    /// <summary>Spawn → Handshake → GetPluginInfo, as every engine operation begins.</summary>
    public static async Task<EngineSession> StartAsync(IDictionary<string, string?>? environment = null)
    {
        var engine = await FakeEngine.StartAsync();
        try
        {
            var plugin = await PluginProcess.StartAsync(engine.Address, environment);
            var session = new EngineSession(engine, plugin);
            await plugin.HandshakeAsync(engine.Address);
            await plugin.CallAsync("GetPluginInfo", new Empty(), PluginInfo.Parser);
            return session;
        }
        catch
        {
            await engine.DisposeAsync();
            throw;
        }
    }

    public static string Urn(string token, string name) => $"urn:pulumi:{Stack}::{Project}::{token}::{name}";

    public static string ProviderUrn => Urn("pulumi:providers:kvm", "default_0_1_0");

    /// <summary>
    /// CheckConfig → Configure, as for a default provider from stack config: the engine adds its own
    /// <c>version</c> key, sends CheckConfig the raw values (secrets unwrapped) and Configure the
    /// checked inputs with the secrets wrapped again.
    /// </summary>
    public async Task<ConfigureResponse> ConfigureAsync(Struct config)
    {
        var news = config.Clone();
        news.Fields["version"] = Value.ForString("0.1.0");
        var raw = new Struct();
        foreach (var (key, value) in news.Fields)
            raw.Fields[key] = IsSecret(value) ? value.StructValue.Fields["value"] : value;
        var check = await Plugin.CallAsync("CheckConfig", new CheckRequest
        {
            Urn = ProviderUrn, Name = "default_0_1_0", Type = "pulumi:providers:kvm", Olds = new Struct(), News = raw,
        }, CheckResponse.Parser);
        Assert.Empty(check.Failures);
        Assert.Equal("0.1.0", check.Inputs.Fields["version"].StringValue);
        var args = check.Inputs.Clone();
        foreach (var (key, value) in news.Fields.Where(f => IsSecret(f.Value)))
            args.Fields[key] = value;
        return await Plugin.CallAsync("Configure", new ConfigureRequest
        {
            Args = args, AcceptSecrets = true, AcceptResources = true, SendsOldInputs = true, SendsOldInputsToDelete = true,
            Id = Guid.NewGuid().ToString(), Urn = ProviderUrn, Name = "default_0_1_0", Type = "pulumi:providers:kvm",
        }, ConfigureResponse.Parser);
    }

    public static Struct Config(string endpoint, string? token = null)
    {
        var config = new Struct();
        config.Fields["endpoint"] = Value.ForString(endpoint);
        if (token is not null)
            config.Fields["token"] = Secret(Value.ForString(token));
        return config;
    }

    private static bool IsSecret(Value value) =>
        value.KindCase == Value.KindOneofCase.StructValue
        && value.StructValue.Fields.TryGetValue(Sentinels.SignatureKey, out var signature)
        && signature.StringValue == Sentinels.SecretSignature;

    public static Value Secret(Value inner)
    {
        var wrapper = new Struct();
        wrapper.Fields[Sentinels.SignatureKey] = Value.ForString(Sentinels.SecretSignature);
        wrapper.Fields["value"] = inner;
        return Value.ForStruct(wrapper);
    }

    public Task<CheckResponse> CheckAsync(string token, string name, Struct? olds, Struct news) =>
        Plugin.CallAsync("Check", new CheckRequest
        {
            Urn = Urn(token, name), Name = name, Type = token, Olds = olds ?? new Struct(), News = news,
            RandomSeed = Google.Protobuf.ByteString.CopyFrom(new byte[32]),
        }, CheckResponse.Parser);

    public Task<DiffResponse> DiffAsync(string token, string name, string id, Struct oldOutputs, Struct oldInputs, Struct news, IEnumerable<string>? ignoreChanges = null)
    {
        var request = new DiffRequest
        {
            Urn = Urn(token, name), Name = name, Type = token, Id = id, Olds = oldOutputs, OldInputs = oldInputs, News = news,
        };
        request.IgnoreChanges.AddRange(ignoreChanges ?? []);
        return Plugin.CallAsync("Diff", request, DiffResponse.Parser);
    }

    public Task<CreateResponse> CreateAsync(string token, string name, Struct inputs, bool preview) =>
        Plugin.CallAsync("Create", new CreateRequest
        {
            Urn = Urn(token, name), Name = name, Type = token, Properties = inputs, Preview = preview,
        }, CreateResponse.Parser);

    public Task<ReadResponse> ReadAsync(string token, string name, string id, Struct? outputs, Struct? inputs) =>
        Plugin.CallAsync("Read", new ReadRequest
        {
            Urn = Urn(token, name), Name = name, Type = token, Id = id, Properties = outputs, Inputs = inputs,
        }, ReadResponse.Parser);

    public Task<UpdateResponse> UpdateAsync(string token, string name, string id, Struct oldOutputs, Struct oldInputs, Struct news, bool preview, IEnumerable<string>? ignoreChanges = null)
    {
        var request = new UpdateRequest
        {
            Urn = Urn(token, name), Name = name, Type = token, Id = id, Olds = oldOutputs, OldInputs = oldInputs, News = news, Preview = preview,
        };
        request.IgnoreChanges.AddRange(ignoreChanges ?? []);
        return Plugin.CallAsync("Update", request, UpdateResponse.Parser);
    }

    public Task<InvokeResponse> InvokeAsync(string token, Struct args, bool preview = false) =>
        Plugin.CallAsync("Invoke", new InvokeRequest { Tok = token, Args = args, Preview = preview }, InvokeResponse.Parser);

    public Task<Empty> DeleteAsync(string token, string name, string id, Struct oldOutputs, Struct oldInputs) =>
        Plugin.CallAsync("Delete", new DeleteRequest
        {
            Urn = Urn(token, name), Name = name, Type = token, Id = id, Properties = oldOutputs, OldInputs = oldInputs,
        }, Empty.Parser);

    public async ValueTask DisposeAsync()
    {
        await Plugin.DisposeAsync();
        await Engine.DisposeAsync();
    }
}
