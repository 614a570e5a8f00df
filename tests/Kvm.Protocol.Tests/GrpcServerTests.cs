using System.Net;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Kvm.Protocol.Grpc;
using Kvm.Protocol.Pulumirpc;
using Kvm.Protocol.Tfplugin6;

namespace Kvm.Protocol.Tests;

public sealed class GrpcServerTests
{
    private const string Echo = "/test.Echo/Echo";

    private static GrpcRouter EchoRouter() => new GrpcRouter().Unary(Echo, DynamicValue.Parser,
        (request, _) => Task.FromResult(new DynamicValue { Msgpack = request.Json, Json = request.Msgpack }));

    [Fact]
    public async Task Unary_call_round_trips_over_a_unix_socket()
    {
        var router = new GrpcRouter().Unary(Tfplugin6Methods.GetProviderSchema, GetProviderSchema.Types.Request.Parser,
            (_, call) => Task.FromResult(new GetProviderSchema.Types.Response
            {
                Provider = new Schema { Version = 3, Block = new Schema.Types.Block { Description = call.Method } },
            }));
        await using var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();

        var response = await client.UnaryAsync(Tfplugin6Methods.GetProviderSchema, new GetProviderSchema.Types.Request(), GetProviderSchema.Types.Response.Parser);

        Assert.Equal(3, response.Provider.Version);
        Assert.Equal("/tfplugin6.Provider/GetProviderSchema", response.Provider.Block.Description);
    }

    [Fact]
    public async Task Response_has_grpc_content_type_and_status_trailer()
    {
        await using var server = await TestServer.StartAsync(EchoRouter(), tcp: true);
        using var invoker = server.CreateInvoker();
        using var request = GrpcClient.CreateRequest(server.Uri(Echo), new ByteArrayContent(GrpcWire.Frame(new DynamicValue { Json = ByteString.CopyFromUtf8("x") })));

        using var response = await invoker.SendAsync(request, CancellationToken.None);
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(2, 0), response.Version);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(GrpcWire.Frame(new DynamicValue { Msgpack = ByteString.CopyFromUtf8("x") }), body);
        Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
        Assert.False(response.Headers.Contains("grpc-status"));
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented_as_trailers_only()
    {
        await using var server = await TestServer.StartAsync(EchoRouter());
        using var invoker = server.CreateInvoker();
        using var request = GrpcClient.CreateRequest(server.Uri("/tfplugin6.Provider/Nope"), new ByteArrayContent(GrpcWire.Frame(new Empty())));

        using var response = await invoker.SendAsync(request, CancellationToken.None);
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12", Assert.Single(response.Headers.GetValues("grpc-status")));
        Assert.Equal("unknown method /tfplugin6.Provider/Nope", Assert.Single(response.Headers.GetValues("grpc-message")));
        Assert.Empty(body);
        Assert.False(response.TrailingHeaders.Contains("grpc-status"));

        using var client = server.CreateClient();
        var e = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync("/x.Y/Z", new Empty(), Empty.Parser));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    [Fact]
    public async Task GrpcException_becomes_status_message_and_details()
    {
        var detail = new ErrorResourceInitFailed { Id = "vm-100", Reasons = { "guest did not boot" } };
        var router = new GrpcRouter().Unary(ResourceProviderMethods.Create, CreateRequest.Parser,
            (_, _) => Task.FromException<CreateResponse>(
                GrpcException.WithDetails(StatusCode.FailedPrecondition, "héllo 100% failed\nline 2", detail)));
        await using var server = await TestServer.StartAsync(router);
        using var invoker = server.CreateInvoker();
        using var request = GrpcClient.CreateRequest(server.Uri(ResourceProviderMethods.Create), new ByteArrayContent(GrpcWire.Frame(new CreateRequest())));

        using var response = await invoker.SendAsync(request, CancellationToken.None);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());

        // Trailers-Only, since no message was sent.
        Assert.Equal("9", Assert.Single(response.Headers.GetValues("grpc-status")));
        Assert.Equal("h%C3%A9llo 100%25 failed%0Aline 2", Assert.Single(response.Headers.GetValues("grpc-message")));
        var detailsHeader = Assert.Single(response.Headers.GetValues("grpc-status-details-bin"));
        Assert.DoesNotContain('=', detailsHeader);
        var status = Rpc.Status.Parser.ParseFrom(GrpcWire.FromBase64(detailsHeader));
        Assert.Equal(9, status.Code);
        Assert.Equal("type.googleapis.com/pulumirpc.ErrorResourceInitFailed", Assert.Single(status.Details).TypeUrl);

        using var client = server.CreateClient();
        var e = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(ResourceProviderMethods.Create, new CreateRequest(), CreateResponse.Parser));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("héllo 100% failed\nline 2", e.Message);
        Assert.Equal("vm-100", e.GetDetail<ErrorResourceInitFailed>()?.Id);
    }

    [Fact]
    public async Task Other_exceptions_become_unknown_with_their_message()
    {
        var router = new GrpcRouter().Unary(Echo, DynamicValue.Parser,
            (_, _) => Task.FromException<DynamicValue>(new InvalidOperationException("disk full")));
        await using var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();

        var e = await Assert.ThrowsAsync<GrpcException>(() => client.UnaryAsync(Echo, new DynamicValue(), DynamicValue.Parser));

        Assert.Equal(StatusCode.Unknown, e.StatusCode);
        Assert.Equal("InvalidOperationException: disk full", e.Message);
    }

    [Fact]
    public async Task Error_after_streamed_messages_goes_in_trailers()
    {
        var router = new GrpcRouter().ServerStreaming<Empty, DynamicValue>("/test.S/Fail", Empty.Parser, async (_, writer, call) =>
        {
            await writer.WriteAsync(new DynamicValue { Json = ByteString.CopyFromUtf8("1") }, call.CancellationToken);
            throw new GrpcException(StatusCode.Aborted, "stopped half way");
        });
        await using var server = await TestServer.StartAsync(router);
        using var invoker = server.CreateInvoker();
        using var request = GrpcClient.CreateRequest(server.Uri("/test.S/Fail"), new ByteArrayContent(GrpcWire.Frame(new Empty())));

        using var response = await invoker.SendAsync(request, CancellationToken.None);
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.False(response.Headers.Contains("grpc-status"));
        Assert.Equal(GrpcWire.Frame(new DynamicValue { Json = ByteString.CopyFromUtf8("1") }), body);
        Assert.Equal("10", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
        Assert.Equal("stopped half way", Assert.Single(response.TrailingHeaders.GetValues("grpc-message")));
    }

    [Fact]
    public async Task Server_streaming_delivers_every_message_then_ok()
    {
        var router = new GrpcRouter().ServerStreaming<GetSchemaRequest, GetSchemaResponse>("/test.S/Count", GetSchemaRequest.Parser, async (request, writer, call) =>
        {
            for (var i = 0; i < request.Version; i++)
            {
                await writer.WriteAsync(new GetSchemaResponse { Schema = i.ToString(System.Globalization.CultureInfo.InvariantCulture) }, call.CancellationToken);
            }
        });
        await using var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();

        var received = new List<string>();
        await foreach (var message in client.ServerStreamingAsync("/test.S/Count", new GetSchemaRequest { Version = 5 }, GetSchemaResponse.Parser))
        {
            received.Add(message.Schema);
        }
        var none = new List<string>();
        await foreach (var message in client.ServerStreamingAsync("/test.S/Count", new GetSchemaRequest { Version = 0 }, GetSchemaResponse.Parser))
        {
            none.Add(message.Schema);
        }

        Assert.Equal(["0", "1", "2", "3", "4"], received);
        Assert.Empty(none);
    }

    [Fact]
    public async Task Twenty_MiB_messages_travel_both_ways()
    {
        await using var server = await TestServer.StartAsync(EchoRouter());
        using var client = server.CreateClient();
        var payload = new byte[20 * 1024 * 1024];
        new Random(42).NextBytes(payload);

        var response = await client.UnaryAsync(Echo, new DynamicValue { Json = ByteString.CopyFrom(payload) }, DynamicValue.Parser);

        Assert.Equal(payload.Length, response.Msgpack.Length);
        Assert.True(response.Msgpack.Span.SequenceEqual(payload));
    }

    [Fact]
    public async Task Message_over_the_limit_is_resource_exhausted()
    {
        var router = EchoRouter();
        router.MaxReceiveMessageSize = 1024;
        await using var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();

        var e = await Assert.ThrowsAsync<GrpcException>(() =>
            client.UnaryAsync(Echo, new DynamicValue { Json = ByteString.CopyFrom(new byte[2048]) }, DynamicValue.Parser));

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task Calls_run_concurrently_on_one_connection()
    {
        const int calls = 40;
        var inFlight = 0;
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var router = new GrpcRouter().Unary(Echo, DynamicValue.Parser, async (request, call) =>
        {
            if (Interlocked.Increment(ref inFlight) == calls)
            {
                allArrived.TrySetResult();
            }
            // No call may finish before every call has started: only true concurrency passes.
            await allArrived.Task.WaitAsync(TimeSpan.FromSeconds(20), call.CancellationToken);
            return new DynamicValue { Msgpack = request.Json };
        });
        await using var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();

        var results = await Task.WhenAll(Enumerable.Range(0, calls).Select(i =>
            client.UnaryAsync(Echo, new DynamicValue { Json = ByteString.CopyFromUtf8($"call {i}") }, DynamicValue.Parser)));

        Assert.Equal(Enumerable.Range(0, calls).Select(i => $"call {i}"), results.Select(r => r.Msgpack.ToStringUtf8()));
    }

    [Fact]
    public async Task Frames_split_across_many_writes_are_reassembled()
    {
        await using var server = await TestServer.StartAsync(EchoRouter());
        using var invoker = server.CreateInvoker();
        var message = new DynamicValue { Json = ByteString.CopyFrom(Enumerable.Range(0, 300).Select(i => (byte)i).ToArray()) };
        // 1-byte writes split the 5-byte header itself; 7-byte writes straddle header and body.
        foreach (var chunk in new[] { 1, 3, 7 })
        {
            using var request = GrpcClient.CreateRequest(server.Uri(Echo), new ChunkedContent(GrpcWire.Frame(message), chunk, TimeSpan.Zero));
            using var response = await invoker.SendAsync(request, CancellationToken.None);
            var body = await response.Content.ReadAsByteArrayAsync();

            Assert.Equal(GrpcWire.Frame(new DynamicValue { Msgpack = message.Json }), body);
            Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
        }
    }

    [Theory]
    [InlineData("compressed", "12")]
    [InlineData("bad-flag", "13")]
    [InlineData("truncated", "13")]
    [InlineData("two-messages", "13")]
    [InlineData("empty-body", "13")]
    public async Task Malformed_request_framing_is_rejected(string shape, string expectedStatus)
    {
        await using var server = await TestServer.StartAsync(EchoRouter());
        using var invoker = server.CreateInvoker();
        var frame = GrpcWire.Frame(new DynamicValue { Json = ByteString.CopyFromUtf8("abc") });
        var body = shape switch
        {
            "compressed" => [1, .. frame[1..]],
            "bad-flag" => [7, .. frame[1..]],
            "truncated" => frame[..^1],
            "two-messages" => [.. frame, .. frame],
            _ => Array.Empty<byte>(),
        };
        using var request = GrpcClient.CreateRequest(server.Uri(Echo), new ChunkedContent(body, 4, TimeSpan.Zero));

        using var response = await invoker.SendAsync(request, CancellationToken.None);
        await response.Content.ReadAsByteArrayAsync();

        var status = response.Headers.TryGetValues("grpc-status", out var h) ? h : response.TrailingHeaders.GetValues("grpc-status");
        Assert.Equal(expectedStatus, Assert.Single(status));
    }

    [Fact]
    public async Task Compressed_request_encoding_is_unimplemented()
    {
        await using var server = await TestServer.StartAsync(EchoRouter());
        using var invoker = server.CreateInvoker();
        using var request = GrpcClient.CreateRequest(server.Uri(Echo), new ByteArrayContent(GrpcWire.Frame(new DynamicValue())));
        request.Headers.Add("grpc-encoding", "gzip");

        using var response = await invoker.SendAsync(request, CancellationToken.None);

        Assert.Equal("12", Assert.Single(response.Headers.GetValues("grpc-status")));
    }

    [Fact]
    public async Task Non_grpc_request_gets_415()
    {
        await using var server = await TestServer.StartAsync(EchoRouter());
        using var invoker = server.CreateInvoker();
        using var request = new HttpRequestMessage(HttpMethod.Post, server.Uri(Echo))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json"),
        };

        using var response = await invoker.SendAsync(request, CancellationToken.None);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Client_reset_cancels_the_handler()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var router = new GrpcRouter().Unary(Echo, DynamicValue.Parser, async (request, call) =>
        {
            started.TrySetResult();
            try
            {
                await Task.Delay(TimeSpan.FromMinutes(1), call.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                cancelled.TrySetResult();
                throw;
            }
            return request;
        });
        await using var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();
        using var cts = new CancellationTokenSource();

        var call = client.UnaryAsync(Echo, new DynamicValue(), DynamicValue.Parser, cts.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await cancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Grpc_timeout_header_ends_the_call_with_deadline_exceeded()
    {
        var router = new GrpcRouter().Unary(Echo, DynamicValue.Parser, async (request, call) =>
        {
            Assert.NotNull(call.Deadline);
            await Task.Delay(TimeSpan.FromMinutes(1), call.CancellationToken);
            return request;
        });
        await using var server = await TestServer.StartAsync(router);
        using var invoker = server.CreateInvoker();
        using var request = GrpcClient.CreateRequest(server.Uri(Echo), new ByteArrayContent(GrpcWire.Frame(new DynamicValue())));
        request.Headers.Add("grpc-timeout", "200m");

        using var response = await invoker.SendAsync(request, CancellationToken.None);

        Assert.Equal("4", Assert.Single(response.Headers.GetValues("grpc-status")));
    }

    [Fact]
    public async Task Stopping_the_server_ends_open_streams_promptly()
    {
        var router = new GrpcRouter().ServerStreaming<Empty, Empty>("/test.S/Forever", Empty.Parser,
            (_, _, call) => Task.Delay(Timeout.Infinite, call.CancellationToken));
        var server = await TestServer.StartAsync(router);
        using var client = server.CreateClient();
        var stream = Task.Run(async () =>
        {
            await foreach (var unused in client.ServerStreamingAsync("/test.S/Forever", new Empty(), Empty.Parser))
            {
            }
        });
        await Task.Delay(200);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        await server.DisposeAsync();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"stop took {watch.Elapsed}");
        var e = await Assert.ThrowsAnyAsync<Exception>(() => stream.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.IsNotType<TimeoutException>(e);
    }

    [Fact]
    public async Task Duplex_stream_sends_headers_at_once_and_reads_requests()
    {
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var router = new GrpcRouter().DuplexStreaming<DynamicValue, DynamicValue>("/test.S/Duplex", DynamicValue.Parser, async (requests, writer, call) =>
        {
            await foreach (var request in requests)
            {
                received.TrySetResult(request.Json.ToStringUtf8());
                await writer.WriteAsync(new DynamicValue { Msgpack = request.Json }, call.CancellationToken);
            }
        });
        await using var server = await TestServer.StartAsync(router);
        using var invoker = server.CreateInvoker();
        var body = new ChunkedContent(GrpcWire.Frame(new DynamicValue { Json = ByteString.CopyFromUtf8("knock") }), 1024, TimeSpan.FromMilliseconds(300));
        using var request = GrpcClient.CreateRequest(server.Uri("/test.S/Duplex"), body);

        using var response = await invoker.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal("knock", await received.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(GrpcWire.Frame(new DynamicValue { Msgpack = ByteString.CopyFromUtf8("knock") }), bytes);
        Assert.Equal("0", Assert.Single(response.TrailingHeaders.GetValues("grpc-status")));
    }
}
