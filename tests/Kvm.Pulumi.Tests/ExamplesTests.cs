using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kvm.Model.Schema;
using Kvm.Pulumi.Schema;
using YamlDotNet.RepresentationModel;

namespace Kvm.Pulumi.Tests;

/// <summary>The Pulumi examples only use resources, functions and properties that schema.json has.</summary>
public partial class ExamplesTests
{
    private static readonly JsonObject Schema = JsonNode.Parse(File.ReadAllText(Repo.PathOf("sdk", "Kvm.Pulumi", "schema.json")))!.AsObject();

    [Fact]
    public void TheYamlProgramMatchesTheSchema()
    {
        var yaml = new YamlStream();
        using (var reader = File.OpenText(Repo.PathOf("examples", "pulumi", "yaml", "Pulumi.yaml")))
            yaml.Load(reader);
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        var problems = new List<string>();
        var resourceTypes = new Dictionary<string, string>();

        foreach (var (nameNode, resourceNode) in (YamlMappingNode)root["resources"])
        {
            var resource = (YamlMappingNode)resourceNode;
            var token = ((YamlScalarNode)resource["type"]).Value!;
            resourceTypes[((YamlScalarNode)nameNode).Value!] = token;
            if (Schema["resources"]![token] is not JsonObject spec)
            {
                problems.Add($"resource type {token} is not in the schema");
                continue;
            }
            if (resource.Children.TryGetValue("properties", out var properties))
                CheckYamlObject((YamlMappingNode)properties, spec["inputProperties"]!.AsObject(), token, problems);
        }

        var functionResults = new Dictionary<string, string>();
        foreach (var (nameNode, variableNode) in (YamlMappingNode)root["variables"])
        {
            var invoke = (YamlMappingNode)((YamlMappingNode)variableNode)["fn::invoke"];
            var token = ((YamlScalarNode)invoke["function"]).Value!;
            functionResults[((YamlScalarNode)nameNode).Value!] = token;
            if (Schema["functions"]![token] is not JsonObject function)
                problems.Add($"function {token} is not in the schema");
            else if (invoke.Children.TryGetValue("arguments", out var arguments))
                CheckYamlObject((YamlMappingNode)arguments, function["inputs"]!["properties"]!.AsObject(), token, problems);
        }

        // ${web.vmId}, ${host.qemuVersion}: outputs of resources and function results must exist.
        foreach (Match reference in OutputReference().Matches(File.ReadAllText(Repo.PathOf("examples", "pulumi", "yaml", "Pulumi.yaml"))))
        {
            var (owner, property) = (reference.Groups[1].Value, reference.Groups[2].Value);
            var outputs = resourceTypes.TryGetValue(owner, out var token) ? Schema["resources"]![token]?["properties"]
                : functionResults.TryGetValue(owner, out var function) ? Schema["functions"]![function]?["outputs"]!["properties"]
                : null;
            if (outputs?[property] is null)
                problems.Add($"${{{owner}.{property}}} is not an output in the schema");
        }
        Assert.Empty(problems);
        Assert.Equal(3, resourceTypes.Count);
    }

    private static void CheckYamlObject(YamlMappingNode value, JsonObject properties, string where, List<string> problems)
    {
        foreach (var (keyNode, child) in value)
        {
            var key = ((YamlScalarNode)keyNode).Value!;
            if (properties[key] is not JsonObject spec)
            {
                problems.Add($"{where}.{key} is not in the schema");
                continue;
            }
            CheckYamlValue(child, spec, $"{where}.{key}", problems);
        }
    }

    private static void CheckYamlValue(YamlNode value, JsonObject spec, string where, List<string> problems)
    {
        if (value is YamlScalarNode { Value: { } text } && text.StartsWith("${", StringComparison.Ordinal))
            return;
        if (spec["$ref"] is JsonValue reference)
        {
            if (value is YamlMappingNode nested)
                CheckYamlObject(nested, TypeProperties((string)reference!), where, problems);
            else
                problems.Add($"{where} should be an object");
        }
        else if (spec["additionalProperties"] is JsonObject element)
        {
            if (value is YamlMappingNode map)
            {
                foreach (var (key, child) in map)
                    CheckYamlValue(child, element, $"{where}[{((YamlScalarNode)key).Value}]", problems);
            }
            else
            {
                problems.Add($"{where} should be a map");
            }
        }
        else if ((string?)spec["type"] == "array" && value is not YamlSequenceNode)
        {
            problems.Add($"{where} should be a list");
        }
    }

    [Fact]
    public void TheCSharpProgramMatchesTheSchema()
    {
        var source = File.ReadAllText(Repo.PathOf("examples", "pulumi", "csharp", "Program.cs"));
        var problems = new List<string>();
        var variables = new Dictionary<string, JsonObject>();

        foreach (Match construction in ArgsConstruction().Matches(source))
        {
            var (inputs, typeName) = (construction.Groups[1].Success, construction.Groups[2].Value);
            JsonObject? properties = null;
            if (inputs)
            {
                properties = Schema["types"]![$"kvm:index/{typeName}:{typeName}"]?["properties"]?.AsObject();
            }
            else
            {
                var resource = Schema["resources"]![$"kvm:index/{Naming.ToCamel(JsonNamingSnake(typeName))}:{typeName}"];
                properties = resource?["inputProperties"]?.AsObject();
                var variable = ResourceVariable().Match(source[..construction.Index]);
                if (resource is not null && variable.Success)
                    variables[variable.Groups[1].Value] = resource["properties"]!.AsObject();
            }
            if (properties is null)
            {
                problems.Add($"{(inputs ? "Inputs." : "")}{typeName}Args has no schema type");
                continue;
            }
            foreach (var property in TopLevelAssignments(source, construction.Index + construction.Length))
            {
                if (properties[Naming.ToCamel(JsonNamingSnake(property))] is null)
                    problems.Add($"{typeName}Args.{property} is not in the schema");
            }
        }

        foreach (Match call in FunctionCall().Matches(source))
        {
            var name = "get" + call.Groups[1].Value;
            if (Schema["functions"]![$"kvm:index/{name}:{name}"] is null)
                problems.Add($"function {name} is not in the schema");
        }

        foreach (Match access in OutputAccess().Matches(source))
        {
            if (variables.TryGetValue(access.Groups[1].Value, out var outputs) && outputs[Naming.ToCamel(JsonNamingSnake(access.Groups[2].Value))] is null)
                problems.Add($"{access.Value} is not an output in the schema");
        }
        Assert.Empty(problems);
        Assert.Equal(["data", "lab", "web"], variables.Keys.Order());
    }

    /// <summary>The property names assigned at the top level of the object initializer opening at <paramref name="start"/>.</summary>
    private static List<string> TopLevelAssignments(string source, int start)
    {
        var names = new List<string>();
        var depth = 0;
        for (var i = start; i < source.Length; i++)
        {
            var c = source[i];
            if (c is '{' or '(' or '[')
            {
                depth++;
            }
            else if (c is '}' or ')' or ']')
            {
                if (--depth < 0)
                    break;
            }
            else if (depth == 0 && (char.IsLetter(c)) && (i == start || !char.IsLetterOrDigit(source[i - 1]) && source[i - 1] != '.'))
            {
                var match = Assignment().Match(source, i);
                if (match.Success && match.Index == i)
                {
                    names.Add(match.Groups[1].Value);
                    i += match.Length - 1;
                }
            }
        }
        return names;
    }

    private static JsonObject TypeProperties(string reference) =>
        Schema["types"]![reference["#/types/".Length..]]!["properties"]!.AsObject();

    private static string JsonNamingSnake(string pascal) => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(pascal);

    [GeneratedRegex(@"new Kvm\.(Inputs\.)?(\w+)Args\s*\{")]
    private static partial Regex ArgsConstruction();

    [GeneratedRegex(@"var (\w+) = new Kvm\.\w+\(""[^""]*"",\s*$")]
    private static partial Regex ResourceVariable();

    [GeneratedRegex(@"Kvm\.Get(\w+)\.Invoke")]
    private static partial Regex FunctionCall();

    [GeneratedRegex(@"\b(\w+)\.([A-Z]\w+)\b")]
    private static partial Regex OutputAccess();

    [GeneratedRegex(@"(\w+)\s*=(?!=)")]
    private static partial Regex Assignment();

    [GeneratedRegex(@"\$\{(\w+)\.(\w+)\}")]
    private static partial Regex OutputReference();
}
