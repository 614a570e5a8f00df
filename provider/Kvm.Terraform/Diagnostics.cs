using Kvm.Model.Schema;
using Kvm.Model.Validation;
using Kvm.Protocol.Tfplugin6;
using Kvm.Terraform.Cty;

namespace Kvm.Terraform;

/// <summary>Builds tfplugin6 diagnostics; every one that concerns a setting carries its path so terraform points at the line.</summary>
public static class Diagnostics
{
    public static Diagnostic Error(string summary, string detail = "", AttrPath? path = null) =>
        Make(Diagnostic.Types.Severity.Error, summary, detail, path);

    public static Diagnostic Warning(string summary, string detail = "", AttrPath? path = null) =>
        Make(Diagnostic.Types.Severity.Warning, summary, detail, path);

    /// <summary>A model validation error as a diagnostic at its attribute.</summary>
    public static Diagnostic FromValidation(ValidationError error)
    {
        var path = error.Attribute.Length == 0 ? null : AttrPath.Parse(error.Attribute);
        var summary = path is null ? "Invalid configuration" : $"Invalid value for {error.Attribute}";
        var detail = path is null ? error.Detail : $"{error.Attribute}: {error.Detail}";
        return Error(summary, detail, path);
    }

    /// <summary>The protocol form of a model path.</summary>
    public static AttributePath ToProto(AttrPath path)
    {
        var proto = new AttributePath();
        foreach (var step in path.Steps)
        {
            proto.Steps.Add(step.Kind switch
            {
                PathStepKind.Attribute => new AttributePath.Types.Step { AttributeName = step.Name },
                PathStepKind.Key => new AttributePath.Types.Step { ElementKeyString = step.Name },
                _ => new AttributePath.Types.Step { ElementKeyInt = step.Index },
            });
        }
        return proto;
    }

    /// <summary>A cty path (from a codec error) as a model path.</summary>
    public static AttrPath FromCty(CtyPath path)
    {
        var result = AttrPath.Root;
        foreach (var step in path.Steps())
        {
            result = step.Kind switch
            {
                CtyPathStepKind.Attribute => result.Attr(step.Name!),
                CtyPathStepKind.StringKey => result.Key(step.Name!),
                _ => result.At((int)step.Index),
            };
        }
        return result;
    }

    public static bool HasErrors(IEnumerable<Diagnostic> diagnostics) =>
        diagnostics.Any(d => d.Severity == Diagnostic.Types.Severity.Error);

    private static Diagnostic Make(Diagnostic.Types.Severity severity, string summary, string detail, AttrPath? path)
    {
        var d = new Diagnostic { Severity = severity, Summary = summary, Detail = detail };
        if (path is { Steps.Count: > 0 })
            d.Attribute = ToProto(path);
        return d;
    }
}
