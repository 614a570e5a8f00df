namespace Kvm.Protocol.Pulumirpc;

/// <summary>gRPC method paths of pulumirpc.ResourceProvider, for <see cref="Grpc.GrpcRouter"/> registrations.</summary>
public static class ResourceProviderMethods
{
    public const string Service = "pulumirpc.ResourceProvider";

    public const string Handshake = "/pulumirpc.ResourceProvider/Handshake";

    public const string Parameterize = "/pulumirpc.ResourceProvider/Parameterize";

    public const string GetSchema = "/pulumirpc.ResourceProvider/GetSchema";

    public const string CheckConfig = "/pulumirpc.ResourceProvider/CheckConfig";

    public const string DiffConfig = "/pulumirpc.ResourceProvider/DiffConfig";

    public const string Configure = "/pulumirpc.ResourceProvider/Configure";

    public const string Invoke = "/pulumirpc.ResourceProvider/Invoke";

    public const string StreamInvoke = "/pulumirpc.ResourceProvider/StreamInvoke";

    public const string Call = "/pulumirpc.ResourceProvider/Call";

    public const string Check = "/pulumirpc.ResourceProvider/Check";

    public const string Diff = "/pulumirpc.ResourceProvider/Diff";

    public const string Create = "/pulumirpc.ResourceProvider/Create";

    public const string Read = "/pulumirpc.ResourceProvider/Read";

    public const string Update = "/pulumirpc.ResourceProvider/Update";

    public const string Delete = "/pulumirpc.ResourceProvider/Delete";

    public const string Construct = "/pulumirpc.ResourceProvider/Construct";

    public const string Cancel = "/pulumirpc.ResourceProvider/Cancel";

    public const string GetPluginInfo = "/pulumirpc.ResourceProvider/GetPluginInfo";

    public const string Attach = "/pulumirpc.ResourceProvider/Attach";

    public const string GetMapping = "/pulumirpc.ResourceProvider/GetMapping";

    public const string GetMappings = "/pulumirpc.ResourceProvider/GetMappings";
}
