using Kvm.Terraform.Tests.RealTerraform;

namespace Kvm.Terraform.Tests.Docs;

public class DocsTests
{
    [Fact]
    public void Committed_docs_match_the_model()
    {
        var root = TerraformFixture.FindRepoRoot();
        var update = Environment.GetEnvironmentVariable("KVM_UPDATE_DOCS") == "1";
        var stale = new List<string>();
        foreach (var page in DocsGenerator.Render(root))
        {
            var path = Path.Combine(root, page.RelativePath);
            if (update)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, page.Content);
            }
            else if (!File.Exists(path) || File.ReadAllText(path) != page.Content)
            {
                stale.Add(page.RelativePath);
            }
        }
        Assert.True(stale.Count == 0, $"stale docs (regenerate with KVM_UPDATE_DOCS=1 dotnet test --filter Docs): {string.Join(", ", stale)}");
    }
}
