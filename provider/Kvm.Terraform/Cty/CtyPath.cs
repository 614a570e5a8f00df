using System.Globalization;
using System.Text;

namespace Kvm.Terraform.Cty;

public enum CtyPathStepKind : byte
{
    Attribute,
    StringKey,
    IntKey,
}

/// <summary>One step of a path into a value; mirrors tfplugin6 <c>AttributePath.Step</c>.</summary>
public readonly record struct CtyPathStep(CtyPathStepKind Kind, string? Name, long Index)
{
    public static CtyPathStep Attribute(string name) => new(CtyPathStepKind.Attribute, name, 0);

    public static CtyPathStep Key(string key) => new(CtyPathStepKind.StringKey, key, 0);

    public static CtyPathStep Key(long index) => new(CtyPathStepKind.IntKey, null, index);
}

/// <summary>An immutable path from a root value; a linked list so appending while walking is cheap.</summary>
public sealed class CtyPath
{
    public static readonly CtyPath Root = new(null, default);

    private readonly CtyPath? _parent;

    private CtyPath(CtyPath? parent, CtyPathStep step)
    {
        _parent = parent;
        Last = step;
        Depth = parent is null ? 0 : parent.Depth + 1;
    }

    public int Depth { get; }

    /// <summary>The final step; meaningless at the root.</summary>
    public CtyPathStep Last { get; }

    public CtyPath? Parent => _parent;

    public bool IsRoot => _parent is null;

    public CtyPath Attribute(string name) => new(this, CtyPathStep.Attribute(name));

    public CtyPath Key(string key) => new(this, CtyPathStep.Key(key));

    public CtyPath Key(long index) => new(this, CtyPathStep.Key(index));

    public CtyPathStep[] Steps()
    {
        var steps = new CtyPathStep[Depth];
        for (var p = this; p._parent is not null; p = p._parent)
        {
            steps[p.Depth - 1] = p.Last;
        }
        return steps;
    }

    /// <summary>HCL-like rendering, e.g. <c>.disks["scsi0"].size</c>; empty at the root.</summary>
    public override string ToString()
    {
        if (IsRoot)
        {
            return "";
        }
        var sb = new StringBuilder();
        foreach (var step in Steps())
        {
            switch (step.Kind)
            {
                case CtyPathStepKind.Attribute:
                    sb.Append('.').Append(step.Name);
                    break;
                case CtyPathStepKind.StringKey:
                    sb.Append("[\"").Append(step.Name).Append("\"]");
                    break;
                default:
                    sb.Append('[').Append(step.Index.ToString(CultureInfo.InvariantCulture)).Append(']');
                    break;
            }
        }
        return sb.ToString();
    }
}

/// <summary>Malformed or non-conforming input to a cty codec, or a value misuse.</summary>
public sealed class CtyException : Exception
{
    private readonly string _detail;

    // Steps collected innermost-first while the exception passes container decoders.
    private List<CtyPathStep>? _reversed;
    private CtyPath? _path;

    public CtyException()
        : this("invalid cty value")
    {
    }

    public CtyException(string message)
        : this(message, (Exception?)null)
    {
    }

    public CtyException(string message, Exception? inner)
        : base(message, inner)
    {
        _detail = message;
    }

    public CtyException(CtyPath? path, string message, Exception? inner = null)
        : this(message, inner)
    {
        _path = path;
    }

    /// <summary>Where in the value the problem is (root when unknown).</summary>
    public CtyPath Path
    {
        get
        {
            if (_reversed is { Count: > 0 })
            {
                var p = _path ?? CtyPath.Root;
                for (var i = _reversed.Count - 1; i >= 0; i--)
                {
                    var s = _reversed[i];
                    p = s.Kind switch
                    {
                        CtyPathStepKind.Attribute => p.Attribute(s.Name!),
                        CtyPathStepKind.StringKey => p.Key(s.Name!),
                        _ => p.Key(s.Index),
                    };
                }
                _path = p;
                _reversed = null;
            }
            return _path ?? CtyPath.Root;
        }
    }

    /// <summary>The problem without its location.</summary>
    public string Detail => _detail;

    public override string Message => Path.IsRoot ? _detail : $"at {Path}: {_detail}";

    /// <summary>
    /// Used from exception filters in decoders so the path costs nothing unless something fails;
    /// always returns false so the exception keeps propagating.
    /// </summary>
    internal bool Prepend(CtyPathStep step)
    {
        if (_path is not null && _reversed is null)
        {
            // A path given at construction is relative to the current container.
            _reversed = [];
            var steps = _path.Steps();
            for (var i = steps.Length - 1; i >= 0; i--)
            {
                _reversed.Add(steps[i]);
            }
            _path = null;
        }
        (_reversed ??= []).Add(step);
        return false;
    }
}
