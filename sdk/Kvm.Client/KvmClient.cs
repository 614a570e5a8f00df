using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Kvm.Model;

namespace Kvm.Client;

/// <summary>A value read from the agent with the ETag it had (send it back as If-Match).</summary>
public sealed record Versioned<T>(T Value, string? ETag);

/// <summary>What DELETE does with a VM that runs.</summary>
public enum RunningVmDeletion
{
    /// <summary>Refuse (409): the caller stops it first.</summary>
    Refuse,
    /// <summary>Graceful shutdown bounded by the timeout, then a forced stop.</summary>
    ShutDown,
    /// <summary>Forced stop at once.</summary>
    Force,
}

/// <summary>
/// Typed client for the kvm-agent API v1, shared by the Terraform and Pulumi plugins, the CLI and the tests.
/// Every failure is a <see cref="KvmApiException"/>; responses are read back as the agent sent them.
/// </summary>
public sealed partial class KvmClient : IDisposable
{
    // Responses are read leniently (a newer agent may add fields); requests are written with the strict model contract.
    private static readonly JsonSerializerOptions Lenient = new(ModelJson.Options) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;

    /// <summary>Wraps an <see cref="HttpClient"/> whose BaseAddress and Authorization header are set.</summary>
    public KvmClient(HttpClient http)
    {
        _http = http;
    }

    private KvmClient(HttpClient http, bool ownsHttp) : this(http) => _ownsHttp = ownsHttp;

    /// <summary>A client for the agent at <paramref name="endpoint"/> (http, https or unix socket, see <see cref="AgentEndpoint"/>) with a bearer token.</summary>
    public static KvmClient Create(Uri endpoint, string token, HttpMessageHandler? handler = null, TimeSpan? timeout = null)
    {
        handler = AgentEndpoint.Route(endpoint, handler);
        var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: true);
        http.BaseAddress = AgentEndpoint.HttpBase(endpoint);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        http.Timeout = timeout ?? TimeSpan.FromMinutes(5);
        return new KvmClient(http, ownsHttp: true);
    }

    /// <summary>The underlying HTTP client.</summary>
    public HttpClient Http => _http;

    // ── host ──────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /healthz (no token needed): true when the agent answers.</summary>
    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync("healthz", cancellationToken);
        return response.IsSuccessStatusCode;
    }

    /// <summary>GET /v1/host.</summary>
    public Task<HostInfo> GetHostAsync(CancellationToken cancellationToken = default) =>
        ValueAsync(HttpMethod.Get, "v1/host", null, null, Json<HostInfo>(), cancellationToken);

    // ── VMs ───────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /v1/vms.</summary>
    public async Task<IReadOnlyList<Vm>> ListVmsAsync(CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Get, "v1/vms", null, null, Json<List<Vm>>(), cancellationToken);

    /// <summary>GET /v1/vms/{vm_id} with its ETag.</summary>
    public Task<Versioned<Vm>> GetVmAsync(long vmId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, Vm(vmId), null, null, Json<Vm>(), cancellationToken)!;

    /// <summary>GET /v1/vms/{vm_id}, or null when the VM does not exist.</summary>
    public async Task<Vm?> FindVmAsync(long vmId, CancellationToken cancellationToken = default)
    {
        try
        {
            return (await GetVmAsync(vmId, cancellationToken)).Value;
        }
        catch (KvmApiException e) when (e.IsNotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// POST /v1/vms. With an <paramref name="idempotencyKey"/>, a retry of the same request returns the same VM
    /// instead of creating a second one.
    /// </summary>
    public Task<Versioned<Vm>> CreateVmAsync(VmSpec spec, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/vms", Body(spec, ModelJsonContext.Default.VmSpec), Headers(idempotencyKey: idempotencyKey), Json<Vm>(), cancellationToken);

    /// <summary>PUT /v1/vms/{vm_id}: the whole spec; <paramref name="ifMatch"/> guards against lost updates (412 when stale).</summary>
    public Task<Versioned<VmUpdateResult>> UpdateVmAsync(long vmId, VmSpec spec, string? ifMatch = null, TimeSpan? shutdownTimeout = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, Vm(vmId) + Query(("timeout", Seconds(shutdownTimeout))), Body(spec, ModelJsonContext.Default.VmSpec), Headers(ifMatch: ifMatch), Json<VmUpdateResult>(), cancellationToken);

    /// <summary>DELETE /v1/vms/{vm_id}.</summary>
    public Task DeleteVmAsync(long vmId, RunningVmDeletion running = RunningVmDeletion.Refuse, TimeSpan? shutdownTimeout = null, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, Vm(vmId) + Query(
            ("force", running == RunningVmDeletion.Force ? "true" : null),
            ("stop", running == RunningVmDeletion.ShutDown ? "true" : null),
            ("timeout", Seconds(shutdownTimeout))), null, null, null, cancellationToken);

    /// <summary>POST …/start ("already running" is success).</summary>
    public Task<Vm> StartVmAsync(long vmId, CancellationToken cancellationToken = default) => ActAsync(vmId, "start", cancellationToken);

    /// <summary>POST …/stop: QMP quit, then SIGKILL ("already stopped" is success).</summary>
    public Task<Vm> StopVmAsync(long vmId, CancellationToken cancellationToken = default) => ActAsync(vmId, "stop", cancellationToken);

    /// <summary>POST …/shutdown: ACPI power-off, waiting up to <paramref name="timeout"/>, then a forced stop when <paramref name="force"/>.</summary>
    public Task<Vm> ShutdownVmAsync(long vmId, TimeSpan? timeout = null, bool force = true, CancellationToken cancellationToken = default) =>
        ActAsync(vmId, "shutdown" + Query(("timeout", Seconds(timeout)), ("force", force ? null : "false")), cancellationToken);

    /// <summary>POST …/reboot: shutdown (bounded, then forced) and start, applying pending changes.</summary>
    public Task<Vm> RebootVmAsync(long vmId, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        ActAsync(vmId, "reboot" + Query(("timeout", Seconds(timeout))), cancellationToken);

    /// <summary>POST …/reset: hard reset.</summary>
    public Task<Vm> ResetVmAsync(long vmId, CancellationToken cancellationToken = default) => ActAsync(vmId, "reset", cancellationToken);

    /// <summary>POST …/suspend: pause the guest.</summary>
    public Task<Vm> SuspendVmAsync(long vmId, CancellationToken cancellationToken = default) => ActAsync(vmId, "suspend", cancellationToken);

    /// <summary>POST …/resume: continue a paused guest.</summary>
    public Task<Vm> ResumeVmAsync(long vmId, CancellationToken cancellationToken = default) => ActAsync(vmId, "resume", cancellationToken);

    /// <summary>GET …/addresses: the VM's addresses from every source the agent has, asked once (never waits long).</summary>
    public Task<VmAddresses> GetVmAddressesAsync(long vmId, CancellationToken cancellationToken = default) =>
        ValueAsync(HttpMethod.Get, Vm(vmId) + "/addresses", null, null, Json<VmAddresses>(), cancellationToken);

    // ── volumes ───────────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /v1/volumes.</summary>
    public async Task<IReadOnlyList<Volume>> ListVolumesAsync(CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Get, "v1/volumes", null, null, Json<List<Volume>>(), cancellationToken);

    /// <summary>POST /v1/volumes.</summary>
    public Task<Versioned<Volume>> CreateVolumeAsync(VolumeSpec spec, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/volumes", Body(spec, ModelJsonContext.Default.VolumeSpec), Headers(idempotencyKey: idempotencyKey), Json<Volume>(), cancellationToken);

    /// <summary>GET /v1/volumes/{pool}/{name}.</summary>
    public Task<Versioned<Volume>> GetVolumeAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, Volume(pool, name), null, null, Json<Volume>(), cancellationToken);

    /// <summary>PUT /v1/volumes/{pool}/{name} (grow).</summary>
    public Task<Versioned<Volume>> UpdateVolumeAsync(string pool, string name, VolumeSpec spec, string? ifMatch = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, Volume(pool, name), Body(spec, ModelJsonContext.Default.VolumeSpec), Headers(ifMatch: ifMatch), Json<Volume>(), cancellationToken);

    /// <summary>DELETE /v1/volumes/{pool}/{name}.</summary>
    public Task DeleteVolumeAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, Volume(pool, name), null, null, null, cancellationToken);

    // ── images ────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /v1/images.</summary>
    public async Task<IReadOnlyList<Image>> ListImagesAsync(CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Get, "v1/images", null, null, Json<List<Image>>(), cancellationToken);

    /// <summary>POST /v1/images: the agent downloads or copies, checks and stores the image before it answers.</summary>
    public Task<Versioned<Image>> CreateImageAsync(ImageSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/images", Body(spec, ModelJsonContext.Default.ImageSpec), null, Json<Image>(), cancellationToken);

    /// <summary>GET /v1/images/{pool}/{name}.</summary>
    public Task<Versioned<Image>> GetImageAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, ImagePath(pool, name), null, null, Json<Image>(), cancellationToken);

    /// <summary>DELETE /v1/images/{pool}/{name} (409 while linked clones use it).</summary>
    public Task DeleteImageAsync(string pool, string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, ImagePath(pool, name), null, null, null, cancellationToken);

    // ── storage pools ─────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /v1/storage-pools.</summary>
    public async Task<IReadOnlyList<StoragePool>> ListStoragePoolsAsync(CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Get, "v1/storage-pools", null, null, Json<List<StoragePool>>(), cancellationToken);

    /// <summary>POST /v1/storage-pools.</summary>
    public Task<Versioned<StoragePool>> CreateStoragePoolAsync(StoragePoolSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/storage-pools", Body(spec, ModelJsonContext.Default.StoragePoolSpec), null, Json<StoragePool>(), cancellationToken);

    /// <summary>GET /v1/storage-pools/{name}.</summary>
    public Task<Versioned<StoragePool>> GetStoragePoolAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/storage-pools/" + Uri.EscapeDataString(name), null, null, Json<StoragePool>(), cancellationToken);

    /// <summary>DELETE /v1/storage-pools/{name}.</summary>
    public Task DeleteStoragePoolAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, "v1/storage-pools/" + Uri.EscapeDataString(name), null, null, null, cancellationToken);

    // ── networks ──────────────────────────────────────────────────────────────────────────────────────

    /// <summary>GET /v1/networks.</summary>
    public async Task<IReadOnlyList<Network>> ListNetworksAsync(CancellationToken cancellationToken = default) =>
        await ValueAsync(HttpMethod.Get, "v1/networks", null, null, Json<List<Network>>(), cancellationToken);

    /// <summary>POST /v1/networks.</summary>
    public Task<Versioned<Network>> CreateNetworkAsync(NetworkSpec spec, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "v1/networks", Body(spec, ModelJsonContext.Default.NetworkSpec), null, Json<Network>(), cancellationToken);

    /// <summary>GET /v1/networks/{name}.</summary>
    public Task<Versioned<Network>> GetNetworkAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/networks/" + Uri.EscapeDataString(name), null, null, Json<Network>(), cancellationToken);

    /// <summary>PUT /v1/networks/{name}.</summary>
    public Task<Versioned<Network>> UpdateNetworkAsync(string name, NetworkSpec spec, string? ifMatch = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, "v1/networks/" + Uri.EscapeDataString(name), Body(spec, ModelJsonContext.Default.NetworkSpec), Headers(ifMatch: ifMatch), Json<Network>(), cancellationToken);

    /// <summary>DELETE /v1/networks/{name}.</summary>
    public Task DeleteNetworkAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<object>(HttpMethod.Delete, "v1/networks/" + Uri.EscapeDataString(name), null, null, null, cancellationToken);

    // ── plumbing ──────────────────────────────────────────────────────────────────────────────────────

    private async Task<Vm> ActAsync(long vmId, string action, CancellationToken cancellationToken) =>
        await ValueAsync(HttpMethod.Post, $"{Vm(vmId)}/{action}", null, null, Json<Vm>(), cancellationToken);

    private async Task<T> ValueAsync<T>(HttpMethod method, string path, HttpContent? body, IReadOnlyList<(string, string)>? headers, JsonTypeInfo<T> type, CancellationToken cancellationToken) =>
        (await SendAsync(method, path, body, headers, type, cancellationToken)).Value;

    private async Task<Versioned<T>> SendAsync<T>(HttpMethod method, string path, HttpContent? body, IReadOnlyList<(string, string)>? headers, JsonTypeInfo<T>? type, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body };
        foreach (var (name, headerValue) in headers ?? [])
            request.Headers.TryAddWithoutValidation(name, headerValue);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw await ProblemAsync(response, cancellationToken);
        var etag = response.Headers.ETag?.ToString();
        if (type is null)
            return new Versioned<T>(default!, etag);
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var value = await JsonSerializer.DeserializeAsync(stream, type, cancellationToken)
            ?? throw new KvmApiException(response.StatusCode, new Problem { Title = "Empty response", Detail = $"{method} {path} returned no body." });
        return new Versioned<T>(value, etag);
    }

    private static async Task<KvmApiException> ProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        Problem problem;
        try
        {
            problem = text.Length > 0 && response.Content.Headers.ContentType?.MediaType is { } media && media.Contains("json", StringComparison.OrdinalIgnoreCase)
                ? JsonSerializer.Deserialize(text, Json<Problem>()) ?? new Problem()
                : new Problem { Detail = text };
        }
        catch (JsonException)
        {
            problem = new Problem { Detail = text };
        }
        problem = problem with
        {
            Status = problem.Status ?? (int)response.StatusCode,
            Title = problem.Title ?? response.ReasonPhrase,
            Detail = problem.Detail ?? response.ReasonPhrase,
        };
        var retryAfter = response.Headers.RetryAfter?.Delta;
        return new KvmApiException(response.StatusCode, problem, retryAfter);
    }

    private static JsonTypeInfo<T> Json<T>() => (JsonTypeInfo<T>)Lenient.GetTypeInfo(typeof(T));

    private static ByteArrayContent Body<T>(T value, JsonTypeInfo<T> type)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(value, type));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private static List<(string, string)> Headers(string? idempotencyKey = null, string? ifMatch = null)
    {
        var headers = new List<(string, string)>();
        if (idempotencyKey is not null)
            headers.Add(("Idempotency-Key", idempotencyKey));
        if (ifMatch is not null)
            headers.Add(("If-Match", ifMatch));
        return headers;
    }

    private static string Vm(long vmId) => "v1/vms/" + vmId.ToString(CultureInfo.InvariantCulture);

    private static string Volume(string pool, string name) => $"v1/volumes/{Uri.EscapeDataString(pool)}/{Uri.EscapeDataString(name)}";

    private static string ImagePath(string pool, string name) => $"v1/images/{Uri.EscapeDataString(pool)}/{Uri.EscapeDataString(name)}";

    private static string? Seconds(TimeSpan? t) => t?.TotalSeconds.ToString(CultureInfo.InvariantCulture);

    private static string Query(params (string Name, string? Value)[] parameters)
    {
        var set = parameters.Where(p => p.Value is not null).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return set.Count == 0 ? "" : "?" + string.Join("&", set);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttp)
            _http.Dispose();
    }
}
