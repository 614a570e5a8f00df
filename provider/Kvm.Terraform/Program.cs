using Kvm.Protocol.GoPlugin;
using Kvm.Terraform;

return await GoPluginServer.RunAsync("terraform-provider-kvm", (router, _) => new KvmProvider(new AgentBackend()).Map(router));
