using System.Text.Json.Nodes;
using Google.Protobuf.WellKnownTypes;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Model.Validation;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;
using Kvm.Pulumi.Provider;
using Kvm.Pulumi.Tests.Harness;
using Kvm.Pulumi.Values;

namespace Kvm.Pulumi.Tests;

/// <summary>
/// The service hosted in-process over real gRPC with a scripted backend: how agent outcomes
/// (partial failures, unreachable agents, pending changes, secrets) reach the engine. The
/// end-to-end lifecycle against a real agent is <see cref="AgentLifecycleTests"/>.
/// </summary>
public sealed class InProcessProviderTests : IAsyncLifetime
{
    private readonly ScriptedOperations _vms = new();
    private FakeEngine _engine = null!;
    private PulumiPluginServer _server = null!;
    private GrpcClient _client = null!;

    public async Task InitializeAsync()
    {
        _engine = await FakeEngine.StartAsync();
        _server = await PulumiPluginServer.StartAsync(new PulumiPluginArguments(), (router, server) =>
            new ResourceProviderService(_ => new ScriptedBackend(_vms), new EngineLog(() => server.Engine, server.AttachEngine)).Register(router));
        _client = GrpcClient.CreateInsecure("127.0.0.1:" + _server.Port);
        // Like the engine, retry the liveness probe while the server answers UNAVAILABLE.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await Call("Handshake", new ProviderHandshakeRequest { EngineAddress = _engine.Address }, ProviderHandshakeResponse.Parser);
                break;
            }
            catch (GrpcException e) when (e.StatusCode == StatusCode.Unavailable && attempt < 100)
            {
                await Task.Delay(10);
            }
        }
        await Call("Configure", new ConfigureRequest { Args = EngineSession.Config("http://127.0.0.1:9") }, ConfigureResponse.Parser);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        await _engine.DisposeAsync();
    }

    private Task<T> Call<TRequest, T>(string method, TRequest request, Google.Protobuf.MessageParser<T> parser)
        where TRequest : Google.Protobuf.IMessage<TRequest>
        where T : class, Google.Protobuf.IMessage<T> =>
        _client.UnaryAsync("/pulumirpc.ResourceProvider/" + method, request, parser);

    private static CreateRequest Create(Struct properties) => new()
    {
        Urn = EngineSession.Urn("kvm:index/vm:Vm", "web"), Type = "kvm:index/vm:Vm", Name = "web", Properties = properties,
    };

    [Fact]
    public async Task CreateSendsModelJsonWithoutHostAndReturnsTheReadBackStateWithSecretsKept()
    {
        var properties = StructCodecTests.Parse("""{"name":"web","memory":{"sizeMib":1024}}""");
        properties.Fields["description"] = EngineSession.Secret(Value.ForString("hush"));
        _vms.OnCreate = (host, config) =>
        {
            Assert.Equal("", host);
            Assert.Equal("""{"name":"web","memory":{"size_mib":1024},"description":"hush"}""", config.ToJsonString());
            var state = (JsonObject)config.DeepClone();
            state["vm_id"] = 101;
            state["status"] = "running";
            return state;
        };
        var created = await Call("Create", Create(properties), CreateResponse.Parser);
        Assert.Equal("101", created.Id);
        Assert.Equal(101d, created.Properties.Fields["vmId"].NumberValue);
        Assert.Equal("running", created.Properties.Fields["status"].StringValue);
        Assert.Equal(Sentinels.SecretSignature, created.Properties.Fields["description"].StructValue.Fields[Sentinels.SignatureKey].StringValue);
    }

    [Fact]
    public async Task APartialCreateBecomesErrorResourceInitFailedWithTheState()
    {
        _vms.OnCreate = (_, config) =>
        {
            var state = (JsonObject)config.DeepClone();
            state["vm_id"] = 102;
            state["status"] = "stopped";
            // What the shared VmOperations throws when the VM was created but reading it back failed.
            throw new PartialCreateException(state, new HttpRequestException("QEMU did not start: connection reset"));
        };
        var error = await Assert.ThrowsAsync<GrpcException>(() => Call("Create", Create(StructCodecTests.Parse("""{"name":"web"}""")), CreateResponse.Parser));
        var detail = error.GetDetail<ErrorResourceInitFailed>();
        Assert.NotNull(detail);
        Assert.Equal("102", detail.Id);
        Assert.Equal("stopped", detail.Properties.Fields["status"].StringValue);
        Assert.Equal("web", detail.Inputs.Fields["name"].StringValue);
        Assert.Contains("QEMU did not start", Assert.Single(detail.Reasons));
    }

    [Fact]
    public async Task AnUnreachableAgentMeansNothingHappenedAndOtherFailuresMeanUnknown()
    {
        _vms.OnCreate = (_, _) => throw new HttpRequestException("connection refused");
        var unreachable = await Assert.ThrowsAsync<GrpcException>(() => Call("Create", Create(StructCodecTests.Parse("""{"name":"web"}""")), CreateResponse.Parser));
        Assert.Equal(StatusCode.Unavailable, unreachable.StatusCode);
        _vms.OnCreate = (_, _) => throw new InvalidOperationException("agent answered 500");
        var unknown = await Assert.ThrowsAsync<GrpcException>(() => Call("Create", Create(StructCodecTests.Parse("""{"name":"web"}""")), CreateResponse.Parser));
        Assert.Equal(StatusCode.Unknown, unknown.StatusCode);
    }

    [Fact]
    public async Task AgentRefusalsSayNothingHappenedWithCamelCasePathsAndAgentFailuresSayUnknown()
    {
        _vms.OnCreate = (_, _) => throw new KvmApiException(System.Net.HttpStatusCode.UnprocessableEntity, new Problem
        {
            Type = ProblemTypes.Validation, Title = "Invalid VM", Errors = [new ProblemError("disks[\"scsi0\"].size_gib", "is required.")],
        });
        var refused = await Assert.ThrowsAsync<GrpcException>(() => Call("Create", Create(StructCodecTests.Parse("""{"name":"web"}""")), CreateResponse.Parser));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("disks[\"scsi0\"].sizeGib: is required.", refused.Message);

        _vms.OnCreate = (_, _) => throw new KvmApiException(System.Net.HttpStatusCode.InternalServerError, new Problem { Type = ProblemTypes.HostCommandFailed, Title = "qemu-img failed" });
        var failed = await Assert.ThrowsAsync<GrpcException>(() => Call("Create", Create(StructCodecTests.Parse("""{"name":"web"}""")), CreateResponse.Parser));
        Assert.Equal(StatusCode.Unknown, failed.StatusCode);
    }

    [Fact]
    public async Task UpdateWarnsThroughTheEngineAboutChangesPendingARestart()
    {
        _vms.OnUpdate = (host, id, prior, config) =>
        {
            Assert.Equal("lab-01", host);
            Assert.Equal("101", id);
            Assert.Null(prior["host"]);
            var state = (JsonObject)config.DeepClone();
            state["vm_id"] = 101;
            state["pending_changes"] = new JsonArray("memory.size_mib");
            return state;
        };
        var response = await Call("Update", new UpdateRequest
        {
            Urn = EngineSession.Urn("kvm:index/vm:Vm", "web"), Type = "kvm:index/vm:Vm", Id = "101",
            Olds = StructCodecTests.Parse("""{"host":"lab-01","vmId":101,"name":"web","memory":{"sizeMib":512}}"""),
            News = StructCodecTests.Parse("""{"host":"lab-01","name":"web","memory":{"sizeMib":1024}}"""),
        }, UpdateResponse.Parser);
        Assert.Equal("lab-01", response.Properties.Fields["host"].StringValue);
        var warning = Assert.Single(_engine.Messages);
        Assert.Equal(LogSeverity.Warning, warning.Severity);
        Assert.Contains("memory.sizeMib", warning.Message);
        Assert.Equal(EngineSession.Urn("kvm:index/vm:Vm", "web"), warning.Urn);
    }

    [Fact]
    public async Task ReadOfAGoneResourceReturnsAnEmptyIdAndImportSplitsTheHost()
    {
        _vms.OnRead = (_, _) => null;
        var gone = await Call("Read", new ReadRequest
        {
            Urn = EngineSession.Urn("kvm:index/vm:Vm", "web"), Type = "kvm:index/vm:Vm", Id = "101",
            Properties = StructCodecTests.Parse("""{"vmId":101,"name":"web"}"""),
        }, ReadResponse.Parser);
        Assert.Equal("", gone.Id);

        _vms.OnRead = (host, id) =>
        {
            Assert.Equal(("lab-01", "101"), (host, id));
            return JsonNode.Parse("""{"vm_id":101,"name":"web","status":"running"}""")!.AsObject();
        };
        var imported = await Call("Read", new ReadRequest { Urn = EngineSession.Urn("kvm:index/vm:Vm", "web"), Type = "kvm:index/vm:Vm", Id = "lab-01/101" }, ReadResponse.Parser);
        Assert.Equal("101", imported.Id);
        Assert.Equal("lab-01", imported.Inputs.Fields["host"].StringValue);
        Assert.Equal(101d, imported.Inputs.Fields["vmId"].NumberValue);
        Assert.False(imported.Inputs.Fields.ContainsKey("status"));
        Assert.Equal("running", imported.Properties.Fields["status"].StringValue);
    }

    [Fact]
    public async Task GetVmReadsThroughTheVmLifecycle()
    {
        _vms.OnRead = (host, id) => id == "101" ? JsonNode.Parse("""{"vm_id":101,"name":"web"}""")!.AsObject() : null;
        var found = await Call("Invoke", new InvokeRequest { Tok = "kvm:index/getVm:getVm", Args = StructCodecTests.Parse("""{"vmId":101}""") }, InvokeResponse.Parser);
        Assert.Equal("web", found.Return.Fields["name"].StringValue);
        var missing = await Call("Invoke", new InvokeRequest { Tok = "kvm:index/getVm:getVm", Args = StructCodecTests.Parse("""{"vmId":102}""") }, InvokeResponse.Parser);
        Assert.Equal("vmId", Assert.Single(missing.Failures).Property);
    }

    [Fact]
    public void EveryRegisteredMethodMatchesTheResourceProviderService()
    {
        var router = new ResourceProviderService(_ => new ScriptedBackend(new ScriptedOperations()), EngineLog.To("127.0.0.1:1")).Register(new GrpcRouter());
        var service = ProviderReflection.Descriptor.Services.Single(s => s.Name == "ResourceProvider");
        Assert.Empty(router.Validate(service));
        Assert.Equal(17, router.Methods.Count);
    }

    private sealed class ScriptedBackend(ScriptedOperations vms) : IKvmBackend
    {
        public IResourceOperations Resource(System.Type modelType) =>
            modelType == typeof(Vm) ? vms : throw new NotSupportedException(modelType.Name);

        public Task<JsonObject> ReadHostAsync(string host, CancellationToken cancellationToken) =>
            Task.FromResult(JsonNode.Parse("""{"hostname":"h","qemu_version":"9.2.0"}""")!.AsObject());

        public Task<JsonObject> ReadVmAddressesAsync(string host, long vmId, CancellationToken cancellationToken) =>
            throw new NotSupportedException("getVmAddresses is tested against the real agent");
    }

    private sealed class ScriptedOperations : IResourceOperations
    {
        public Func<string, JsonObject, JsonObject> OnCreate { get; set; } = (_, c) => c;
        public Func<string, string, JsonObject?> OnRead { get; set; } = (_, _) => null;
        public Func<string, string, JsonObject, JsonObject, JsonObject> OnUpdate { get; set; } = (_, _, _, c) => c;

        public System.Type ModelType => typeof(Vm);

        public IReadOnlyList<ValidationError> Validate(JsonObject config) => [];

        public IReadOnlyList<ValidationError> ValidateUpdate(JsonObject prior, JsonObject config) => [];

        public string IdOf(JsonObject state) => state["vm_id"]!.ToJsonString();

        public Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken) => Task.FromResult(OnCreate(host, config));

        public Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken) => Task.FromResult(OnRead(host, id));

        public Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken) =>
            Task.FromResult(OnUpdate(host, id, prior, config));

        public Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
