using System.Text;
using Kvm.Agent.Qemu;

namespace Kvm.Agent.Tests.Qemu;

/// <summary>
/// cfg2cmd-style golden tests: every <c>cases/*.json</c> must produce exactly its <c>.args</c> (one argv
/// element per line) or its <c>.error</c> (one <c>attribute: message</c> per line).
/// <c>UPDATE_GOLDEN=1 dotnet test</c> rewrites the expected files; review the diff before committing.
/// </summary>
public sealed class QemuCommandGoldenTests
{
    private static bool Update => Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1";

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var name in GoldenCase.Names())
            data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case_produces_its_golden_output(string name)
    {
        var input = GoldenCase.Load(name);
        var result = QemuCommand.TryBuild(input.Spec, input.Facts, input.Paths);
        var (extension, other, lines) = result.Ok
            ? (".args", ".error", result.Args.Select(a => a))
            : (".error", ".args", result.Errors.Select(e => e.ToString()));
        var actual = Render(lines);
        var expectedFile = Path.Join(GoldenCase.CasesDirectory, name + extension);
        var otherFile = Path.Join(GoldenCase.CasesDirectory, name + other);

        if (Update)
        {
            File.WriteAllText(expectedFile, actual);
            File.Delete(otherFile);
            return;
        }
        Assert.False(File.Exists(otherFile), $"{name}: expected {other} but the builder produced {extension}:\n{actual}");
        Assert.True(File.Exists(expectedFile), $"{name}: no {extension} file; the builder produced:\n{actual}");
        Assert.Equal(File.ReadAllText(expectedFile), actual);
    }

    [Fact]
    public void Every_case_has_exactly_one_expected_file_and_there_are_enough_cases()
    {
        var names = GoldenCase.Names().ToList();
        Assert.True(names.Count >= 30, $"only {names.Count} golden cases");
        foreach (var file in Directory.EnumerateFiles(GoldenCase.CasesDirectory).Where(f => !f.EndsWith(".json", StringComparison.Ordinal)))
            Assert.Contains(Path.GetFileNameWithoutExtension(file), names);
    }

    [Fact]
    public void Build_throws_the_errors_TryBuild_returns()
    {
        var input = GoldenCase.Load("error-cpu-host-under-tcg");
        var e = Assert.Throws<QemuBuildException>(() => QemuCommand.Build(input.Spec, input.Facts, input.Paths));
        Assert.Equal(QemuCommand.TryBuild(input.Spec, input.Facts, input.Paths).Errors, e.Errors);
    }

    private static string Render(IEnumerable<string> lines)
    {
        var sb = new StringBuilder();
        foreach (var line in lines)
            sb.Append(line).Append('\n');
        return sb.ToString();
    }
}
