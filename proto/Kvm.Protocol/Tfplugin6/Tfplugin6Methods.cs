namespace Kvm.Protocol.Tfplugin6;

/// <summary>gRPC method paths of tfplugin6.Provider, for <see cref="Grpc.GrpcRouter"/> registrations.</summary>
public static class Tfplugin6Methods
{
    public const string Service = "tfplugin6.Provider";

    public const string GetMetadata = "/tfplugin6.Provider/GetMetadata";

    public const string GetProviderSchema = "/tfplugin6.Provider/GetProviderSchema";

    public const string ValidateProviderConfig = "/tfplugin6.Provider/ValidateProviderConfig";

    public const string ValidateResourceConfig = "/tfplugin6.Provider/ValidateResourceConfig";

    public const string ValidateDataResourceConfig = "/tfplugin6.Provider/ValidateDataResourceConfig";

    public const string UpgradeResourceState = "/tfplugin6.Provider/UpgradeResourceState";

    public const string ConfigureProvider = "/tfplugin6.Provider/ConfigureProvider";

    public const string ReadResource = "/tfplugin6.Provider/ReadResource";

    public const string PlanResourceChange = "/tfplugin6.Provider/PlanResourceChange";

    public const string ApplyResourceChange = "/tfplugin6.Provider/ApplyResourceChange";

    public const string ImportResourceState = "/tfplugin6.Provider/ImportResourceState";

    public const string MoveResourceState = "/tfplugin6.Provider/MoveResourceState";

    public const string ReadDataSource = "/tfplugin6.Provider/ReadDataSource";

    public const string ValidateEphemeralResourceConfig = "/tfplugin6.Provider/ValidateEphemeralResourceConfig";

    public const string OpenEphemeralResource = "/tfplugin6.Provider/OpenEphemeralResource";

    public const string RenewEphemeralResource = "/tfplugin6.Provider/RenewEphemeralResource";

    public const string CloseEphemeralResource = "/tfplugin6.Provider/CloseEphemeralResource";

    public const string GetFunctions = "/tfplugin6.Provider/GetFunctions";

    public const string CallFunction = "/tfplugin6.Provider/CallFunction";

    public const string StopProvider = "/tfplugin6.Provider/StopProvider";
}
