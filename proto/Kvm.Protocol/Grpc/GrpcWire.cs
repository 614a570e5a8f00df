using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Google.Protobuf;

namespace Kvm.Protocol.Grpc;

/// <summary>
/// The parts of gRPC-over-HTTP/2 shared by server and client: 5-byte message framing,
/// grpc-message percent-encoding and grpc-status-details-bin base64.
/// </summary>
public static class GrpcWire
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string StatusDetailsHeader = "grpc-status-details-bin";
    public const string EncodingHeader = "grpc-encoding";
    public const string TimeoutHeader = "grpc-timeout";
    public const int FrameHeaderSize = 5;

    /// <summary>Terraform sends schemas of tens of MiB; Pulumi allows 400 MiB.</summary>
    public const int DefaultMaxReceiveMessageSize = 256 * 1024 * 1024;

    public static bool IsGrpcContentType(string? contentType)
    {
        if (contentType is null || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        // application/grpc, application/grpc+proto, application/grpc;charset=... but not application/grpc-web.
        return contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';';
    }

    /// <summary>Writes one framed message without copying it through an intermediate array.</summary>
    public static void WriteMessage(IBufferWriter<byte> writer, IMessage message)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(message);
        var size = message.CalculateSize();
        var header = writer.GetSpan(FrameHeaderSize);
        header[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)size);
        writer.Advance(FrameHeaderSize);
        if (size > 0)
        {
            message.WriteTo(writer);
        }
    }

    public static byte[] Frame(IMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>();
        WriteMessage(buffer, message);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads the next framed message, or returns null when the stream ends cleanly between
    /// messages. Throws <see cref="GrpcException"/> for a truncated, compressed or oversized frame.
    /// </summary>
    public static async ValueTask<T?> ReadMessageAsync<T>(
        PipeReader reader, MessageParser<T> parser, long maxMessageSize, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(parser);
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length >= FrameHeaderSize)
            {
                var length = ReadHeader(buffer, maxMessageSize);
                if (buffer.Length - FrameHeaderSize >= length)
                {
                    var payload = buffer.Slice(FrameHeaderSize, length);
                    T message;
                    try
                    {
                        message = parser.ParseFrom(payload);
                    }
                    catch (InvalidProtocolBufferException e)
                    {
                        reader.AdvanceTo(payload.End);
                        throw new GrpcException(StatusCode.Internal, "failed to parse message: " + e.Message);
                    }
                    reader.AdvanceTo(payload.End);
                    return message;
                }
            }
            if (result.IsCompleted)
            {
                var leftover = buffer.Length;
                reader.AdvanceTo(buffer.End);
                if (leftover == 0)
                {
                    return null;
                }
                throw new GrpcException(StatusCode.Internal, "stream ended inside a message frame");
            }
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static uint ReadHeader(ReadOnlySequence<byte> buffer, long maxMessageSize)
    {
        Span<byte> header = stackalloc byte[FrameHeaderSize];
        buffer.Slice(0, FrameHeaderSize).CopyTo(header);
        if (header[0] == 1)
        {
            // We never advertise an encoding, so a compressed frame is a client bug.
            throw new GrpcException(StatusCode.Unimplemented, "compressed messages are not supported");
        }
        if (header[0] != 0)
        {
            throw new GrpcException(StatusCode.Internal, $"invalid message flag {header[0]}");
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > maxMessageSize)
        {
            throw new GrpcException(
                StatusCode.ResourceExhausted,
                $"message of {length} bytes exceeds the limit of {maxMessageSize} bytes");
        }
        return length;
    }

    /// <summary>Percent-encodes a status message as the gRPC spec asks for grpc-message.</summary>
    public static string EncodeMessage(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var needsEncoding = false;
        foreach (var c in message)
        {
            if (c is < ' ' or > '~' or '%')
            {
                needsEncoding = true;
                break;
            }
        }
        if (!needsEncoding)
        {
            return message;
        }
        var builder = new StringBuilder(message.Length + 16);
        foreach (var b in Encoding.UTF8.GetBytes(message))
        {
            if (b is >= (byte)' ' and <= (byte)'~' and not (byte)'%')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }

    /// <summary>Reverses <see cref="EncodeMessage"/>; malformed escapes are kept as text.</summary>
    public static string DecodeMessage(string? encoded)
    {
        if (string.IsNullOrEmpty(encoded))
        {
            return string.Empty;
        }
        if (!encoded.Contains('%', StringComparison.Ordinal))
        {
            return encoded;
        }
        var bytes = new List<byte>(encoded.Length);
        for (var i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '%' && i + 2 < encoded.Length
                && byte.TryParse(encoded.AsSpan(i + 1, 2), System.Globalization.NumberStyles.HexNumber,
                    System.Globalization.CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(encoded[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Base64 without '=' padding, as grpc-go and go-plugin emit it.</summary>
    public static string ToUnpaddedBase64(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=');

    /// <summary>Accepts base64 with or without padding.</summary>
    public static byte[] FromBase64(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var trimmed = value.Trim();
        var padding = (4 - (trimmed.Length % 4)) % 4;
        return Convert.FromBase64String(padding == 0 ? trimmed : trimmed + new string('=', padding));
    }

    /// <summary>Parses grpc-timeout ("100m", "5S", ...); null when absent or malformed.</summary>
    public static TimeSpan? ParseTimeout(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length < 2 || value.Length > 9
            || !long.TryParse(value.AsSpan(0, value.Length - 1), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var amount))
        {
            return null;
        }
        return value[^1] switch
        {
            'H' => TimeSpan.FromHours(amount),
            'M' => TimeSpan.FromMinutes(amount),
            'S' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMilliseconds(amount),
            'u' => TimeSpan.FromMicroseconds(amount),
            'n' => TimeSpan.FromTicks(amount / 100),
            _ => null,
        };
    }
}
