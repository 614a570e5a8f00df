using System.IO.Pipelines;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumi;
using Kvm.Protocol.Pulumirpc;
using Kvm.Protocol.Tfplugin6;

namespace Kvm.Protocol.Tests;

public sealed class WireAndRouterTests
{
    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("100%", "100%25")]
    [InlineData("a\nb\tc", "a%0Ab%09c")]
    [InlineData("ünïcödé ✓", "%C3%BCn%C3%AFc%C3%B6d%C3%A9 %E2%9C%93")]
    public void Status_messages_are_percent_encoded_and_decoded(string text, string wire)
    {
        Assert.Equal(wire, GrpcWire.EncodeMessage(text));
        Assert.Equal(text, GrpcWire.DecodeMessage(wire));
    }

    [Fact]
    public void Broken_percent_escapes_decode_as_text() =>
        Assert.Equal("50%zz%", GrpcWire.DecodeMessage("50%zz%"));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(100)]
    public void Base64_has_no_padding_and_reads_both_forms(int length)
    {
        var data = Enumerable.Range(0, length).Select(i => (byte)(i * 7)).ToArray();

        var unpadded = GrpcWire.ToUnpaddedBase64(data);

        Assert.DoesNotContain('=', unpadded);
        Assert.Equal(data, GrpcWire.FromBase64(unpadded));
        Assert.Equal(data, GrpcWire.FromBase64(Convert.ToBase64String(data)));
    }

    [Theory]
    [InlineData("5S", 5000)]
    [InlineData("250m", 250)]
    [InlineData("2M", 120000)]
    [InlineData("1H", 3600000)]
    public void Grpc_timeout_values_parse(string value, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), GrpcWire.ParseTimeout(value));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("5x")]
    [InlineData("-5S")]
    [InlineData("1234567890S")]
    public void Bad_grpc_timeout_values_are_ignored(string? value) => Assert.Null(GrpcWire.ParseTimeout(value));

    [Fact]
    public async Task Reader_reassembles_messages_fed_one_byte_at_a_time()
    {
        var pipe = new Pipe();
        var first = new DynamicValue { Json = ByteString.CopyFromUtf8("first") };
        var second = new DynamicValue();
        var bytes = GrpcWire.Frame(first).Concat(GrpcWire.Frame(second)).ToArray();
        var writer = Task.Run(async () =>
        {
            foreach (var b in bytes)
            {
                await pipe.Writer.WriteAsync(new[] { b });
            }
            await pipe.Writer.CompleteAsync();
        });

        var a = await GrpcWire.ReadMessageAsync(pipe.Reader, DynamicValue.Parser, 1024, CancellationToken.None);
        var b2 = await GrpcWire.ReadMessageAsync(pipe.Reader, DynamicValue.Parser, 1024, CancellationToken.None);
        var end = await GrpcWire.ReadMessageAsync(pipe.Reader, DynamicValue.Parser, 1024, CancellationToken.None);
        await writer;

        Assert.Equal(first, a);
        Assert.Equal(second, b2);
        Assert.Null(end);
    }

    [Fact]
    public void Empty_message_frames_as_five_zero_bytes() =>
        Assert.Equal(new byte[5], GrpcWire.Frame(new Empty()));

    [Fact]
    public void Method_constants_match_the_proto_services()
    {
        var tf = Tfplugin6Reflection.Descriptor.Services.Single(s => s.Name == "Provider");
        var pulumi = ProviderReflection.Descriptor.Services.Single(s => s.Name == "ResourceProvider");

        var tfConstants = typeof(Tfplugin6Methods).GetFields().Where(f => f.Name != "Service").Select(f => (string)f.GetValue(null)!);
        var pulumiConstants = typeof(ResourceProviderMethods).GetFields().Where(f => f.Name != "Service").Select(f => (string)f.GetValue(null)!);

        Assert.Equal(tf.Methods.Select(m => $"/tfplugin6.Provider/{m.Name}").Order(), tfConstants.Order());
        Assert.Equal(pulumi.Methods.Select(m => $"/pulumirpc.ResourceProvider/{m.Name}").Order(), pulumiConstants.Order());
        Assert.Equal(20, tf.Methods.Count);
    }

    [Fact]
    public void Validate_reports_wrong_types_kinds_and_missing_methods()
    {
        var service = Tfplugin6Reflection.Descriptor.Services.Single(s => s.Name == "Provider");
        var router = new GrpcRouter()
            .Unary(Tfplugin6Methods.GetProviderSchema, GetProviderSchema.Types.Request.Parser,
                (_, _) => Task.FromResult(new GetProviderSchema.Types.Response()))
            .Unary(Tfplugin6Methods.StopProvider, StopProvider.Types.Request.Parser,
                (_, _) => Task.FromResult(new ValidateProviderConfig.Types.Response()))
            .ServerStreaming<ReadResource.Types.Request, ReadResource.Types.Response>(Tfplugin6Methods.ReadResource, ReadResource.Types.Request.Parser,
                (_, _, _) => Task.CompletedTask);

        var problems = router.Validate(service);
        var strict = router.Validate(service, requireAll: true);

        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("/tfplugin6.Provider/StopProvider returns", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("/tfplugin6.Provider/ReadResource is registered as ServerStreaming", StringComparison.Ordinal));
        Assert.Equal(2 + 17, strict.Count);
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("/OnlyService")]
    [InlineData("/Service/")]
    [InlineData("//Method")]
    public void Router_rejects_paths_that_are_not_grpc_methods(string path) =>
        Assert.Throws<ArgumentException>(() => new GrpcRouter().Unary(path, Empty.Parser, (r, _) => Task.FromResult(r)));

    [Fact]
    public void Router_rejects_duplicate_registrations()
    {
        var router = new GrpcRouter().Unary("/a.B/C", Empty.Parser, (r, _) => Task.FromResult(r));
        Assert.Throws<ArgumentException>(() => router.Unary("/a.B/C", Empty.Parser, (r, _) => Task.FromResult(r)));
    }

    [Fact]
    public void Grpc_exception_details_pack_as_any_with_pulumi_type_url()
    {
        var e = GrpcException.WithDetails(StatusCode.Internal, "boom", new ConfigureErrorMissingKeys
        {
            MissingKeys = { new ConfigureErrorMissingKeys.Types.MissingKey { Name = "kvm:endpoint" } },
        });

        Assert.Equal(13, e.Details!.Code);
        Assert.Equal("type.googleapis.com/pulumirpc.ConfigureErrorMissingKeys", Assert.Single(e.Details.Details).TypeUrl);
        Assert.Equal("kvm:endpoint", e.GetDetail<ConfigureErrorMissingKeys>()!.MissingKeys[0].Name);
        Assert.Null(e.GetDetail<ErrorResourceInitFailed>());
    }

    [Theory]
    [InlineData(new[] { "127.0.0.1:4000" }, "127.0.0.1:4000", false, 0, null)]
    [InlineData(new[] { "--logtostderr", "-v=9", "--tracing", "http://t", "127.0.0.1:1" }, "127.0.0.1:1", true, 9, "http://t")]
    [InlineData(new[] { "-v", "3", "--tracing=x", "127.0.0.1:2" }, "127.0.0.1:2", false, 3, "x")]
    [InlineData(new[] { "--logflow", "--unknown-flag=1" }, null, false, 0, null)]
    public void Pulumi_arguments_parse_like_the_engine_passes_them(string[] args, string? address, bool toStderr, int verbosity, string? tracing)
    {
        var parsed = PulumiPluginArguments.Parse(args);

        Assert.Equal(address, parsed.EngineAddress);
        Assert.Equal(toStderr, parsed.LogToStderr);
        Assert.Equal(verbosity, parsed.Verbosity);
        Assert.Equal(tracing, parsed.TracingEndpoint);
    }
}
