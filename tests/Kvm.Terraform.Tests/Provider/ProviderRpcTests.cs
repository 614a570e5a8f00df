using System.Text.Json.Nodes;
using Google.Protobuf;
using Kvm.Client;
using Kvm.Client.Operations;
using Kvm.Model;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;
using static Kvm.Terraform.Tests.Provider.Values;

namespace Kvm.Terraform.Tests.Provider;

/// <summary>The RPC handlers over an in-memory backend: what terraform gets back for each outcome.</summary>
public class ProviderRpcTests
{
    private sealed class FakeVms : ModelOperations<Vm, VmSpec>
    {
        public FakeVms() : base("vm_id") { }

        public Dictionary<string, JsonObject> Vms { get; } = [];
        public bool FailAfterCreate { get; set; }

        public override Task<JsonObject> CreateAsync(string host, JsonObject config, CancellationToken cancellationToken)
        {
            var vm = (JsonObject)config.DeepClone();
            vm["vm_id"] ??= 100;
            vm["status"] = "running";
            Vms[vm["vm_id"]!.ToJsonString()] = vm;
            if (FailAfterCreate)
                throw new PartialCreateException((JsonObject)vm.DeepClone(), new InvalidOperationException("did not start"));
            return Task.FromResult((JsonObject)vm.DeepClone());
        }

        public override Task<JsonObject?> ReadAsync(string host, string id, CancellationToken cancellationToken) =>
            Task.FromResult(Vms.TryGetValue(id, out var vm) ? (JsonObject?)vm.DeepClone() : null);

        public override Task<JsonObject> UpdateAsync(string host, string id, JsonObject prior, JsonObject config, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public override Task DeleteAsync(string host, string id, JsonObject prior, CancellationToken cancellationToken)
        {
            Vms.Remove(id);
            return Task.CompletedTask;
        }
    }

    private sealed class FakeBackend(FakeVms vms) : IProviderBackend
    {
        public IResourceOperations? Resource(string typeName) => typeName == "kvm_vm" ? vms : null;

        public IDataSourceOperations? DataSource(string typeName) => null;

        public void Configure(ProviderSettings settings)
        {
        }
    }

    private static DynamicValue Dv(CtyValue v) => KvmProvider.Encode(v, VmType.Type);

    private static CtyValue Back(DynamicValue d) => KvmProvider.Decode(d, VmType.Type);

    [Fact]
    public async Task Create_returns_the_read_back_state_with_id_and_keeps_host_and_timeouts()
    {
        var vms = new FakeVms();
        var provider = new KvmProvider(new FakeBackend(vms));
        var config = Of(VmType, """{ "name": "web", "timeouts": { "create": "1m" } }""");
        var plan = provider.Plan(new PlanResourceChange.Types.Request { TypeName = "kvm_vm", PriorState = Dv(CtyValue.Null(VmType.Type)), ProposedNewState = Dv(config), Config = Dv(config) });
        Assert.Empty(plan.Diagnostics);
        var apply = await provider.ApplyAsync(new ApplyResourceChange.Types.Request { TypeName = "kvm_vm", PriorState = Dv(CtyValue.Null(VmType.Type)), PlannedState = plan.PlannedState, Config = Dv(config) }, default);
        Assert.Empty(apply.Diagnostics);
        var state = Back(apply.NewState);
        Assert.Equal("100", state.GetAttr("id").AsString());
        Assert.Equal("running", state.GetAttr("status").AsString());
        Assert.Equal("1m", state.GetAttr("timeouts").GetAttr("create").AsString());
        Assert.True(state.IsWhollyKnown);
    }

    [Fact]
    public async Task A_partial_create_is_kept_in_the_state_with_the_error()
    {
        var vms = new FakeVms { FailAfterCreate = true };
        var provider = new KvmProvider(new FakeBackend(vms));
        var config = Of(VmType, """{ "name": "web" }""");
        var planned = Planning.Planner.PlanCreate(VmType.Block, config);
        var apply = await provider.ApplyAsync(new ApplyResourceChange.Types.Request { TypeName = "kvm_vm", PriorState = Dv(CtyValue.Null(VmType.Type)), PlannedState = Dv(planned), Config = Dv(config) }, default);
        Assert.Contains(apply.Diagnostics, d => d.Severity == Diagnostic.Types.Severity.Error && d.Detail.Contains("did not start", StringComparison.Ordinal));
        Assert.Equal(100, Back(apply.NewState).GetAttr("vm_id").AsInt64());
    }

    [Fact]
    public async Task Reading_a_vanished_resource_removes_it_and_import_reads_it_back()
    {
        var vms = new FakeVms();
        var provider = new KvmProvider(new FakeBackend(vms));
        var state = Of(VmType, """{ "id": "100", "vm_id": 100, "name": "web", "status": "running" }""");
        var read = await provider.ReadAsync(new ReadResource.Types.Request { TypeName = "kvm_vm", CurrentState = Dv(state) }, default);
        Assert.Empty(read.Diagnostics);
        Assert.True(Back(read.NewState).IsNull);

        vms.Vms["100"] = JsonNode.Parse("""{ "vm_id": 100, "name": "web", "status": "running" }""")!.AsObject();
        var import = await provider.ImportAsync(new ImportResourceState.Types.Request { TypeName = "kvm_vm", Id = "lab2/100" }, default);
        var imported = Back(Assert.Single(import.ImportedResources).State);
        Assert.Equal("lab2", imported.GetAttr("host").AsString());
        Assert.Equal("100", imported.GetAttr("id").AsString());
        var missing = await provider.ImportAsync(new ImportResourceState.Types.Request { TypeName = "kvm_vm", Id = "101" }, default);
        Assert.Contains("Cannot import", Assert.Single(missing.Diagnostics).Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Upgrading_json_state_drops_attributes_the_schema_no_longer_has()
    {
        var provider = new KvmProvider(new FakeBackend(new FakeVms()));
        var upgrade = provider.Upgrade(new UpgradeResourceState.Types.Request
        {
            TypeName = "kvm_vm",
            Version = 0,
            RawState = new RawState { Json = ByteString.CopyFromUtf8("""{ "id": "100", "vm_id": 100, "name": "web", "retired_setting": true }""") },
        });
        Assert.Empty(upgrade.Diagnostics);
        Assert.Equal("web", Back(upgrade.UpgradedState).GetAttr("name").AsString());
    }

    [Fact]
    public void Metadata_and_schema_advertise_optional_schema_fetching()
    {
        Assert.True(KvmProvider.Metadata().ServerCapabilities.GetProviderSchemaOptional);
        Assert.Equal(6, KvmProvider.Metadata().Resources.Count);
    }
}
