using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Kvm.Protocol.Grpc;

/// <summary>
/// A non-OK gRPC status. Handlers throw it to answer with a status; <see cref="GrpcClient"/>
/// throws it when a call ends with one. <see cref="Details"/> travels in grpc-status-details-bin.
/// </summary>
public sealed class GrpcException : Exception
{
    public GrpcException(StatusCode statusCode, string message, Rpc.Status? details = null)
        : base(message)
    {
        StatusCode = statusCode;
        Details = details;
    }

    public GrpcException(StatusCode statusCode, string message, Exception innerException)
        : base(message, innerException)
    {
        StatusCode = statusCode;
    }

    public GrpcException()
        : this(StatusCode.Unknown, "unknown error")
    {
    }

    public GrpcException(string message)
        : this(StatusCode.Unknown, message)
    {
    }

    public GrpcException(string message, Exception innerException)
        : this(StatusCode.Unknown, message, innerException)
    {
    }

    public StatusCode StatusCode { get; }

    /// <summary>The rich status, if any; its code and message match the plain trailers.</summary>
    public Rpc.Status? Details { get; }

    /// <summary>
    /// Builds an exception whose details pack each message as google.protobuf.Any
    /// (type URL type.googleapis.com/&lt;full name&gt;), as Pulumi's engine expects for
    /// ErrorResourceInitFailed and ConfigureErrorMissingKeys.
    /// </summary>
    public static GrpcException WithDetails(StatusCode statusCode, string message, params IMessage[] details)
    {
        ArgumentNullException.ThrowIfNull(details);
        var status = new Rpc.Status { Code = (int)statusCode, Message = message };
        foreach (var detail in details)
        {
            status.Details.Add(Any.Pack(detail));
        }
        return new GrpcException(statusCode, message, status);
    }

    /// <summary>The first detail of type <typeparamref name="T"/>, or null.</summary>
    public T? GetDetail<T>() where T : class, IMessage<T>, new()
    {
        if (Details is null)
        {
            return null;
        }
        foreach (var any in Details.Details)
        {
            if (any.TryUnpack<T>(out var value))
            {
                return value;
            }
        }
        return null;
    }
}
