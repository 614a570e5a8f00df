using Kvm.Agent.Qemu;

namespace Kvm.Agent.Tests.Qemu;

public sealed class QemuOptionsTests
{
    [Theory]
    [InlineData("plain.qcow2", "plain.qcow2")]
    [InlineData("a.qcow2,readonly=on", "a.qcow2,,readonly=on")]
    [InlineData(",", ",,")]
    [InlineData(",,", ",,,,")]
    [InlineData("", "")]
    public void Escape_doubles_commas(string value, string expected) => Assert.Equal(expected, QemuOptions.Escape(value));

    [Fact]
    public void Builder_escapes_every_value_and_the_head()
    {
        var text = QemuOptions.Of("driver=file").Add("filename", "/x/a,readonly=on").Add("read-only", false).Add("n", 3).ToString();
        Assert.Equal("driver=file,filename=/x/a,,readonly=on,read-only=off,n=3", text);
        Assert.Equal("x,,y,k=v", QemuOptions.Of("x,y").Add("k", "v").ToString());
    }

    [Fact]
    public void An_escaped_value_splits_back_into_the_same_options_the_way_QEMU_reads_them()
    {
        var evil = "/srv/a,readonly=on,file.locking=off";
        var text = QemuOptions.Of("driver=file").Add("filename", evil).Add("node-name", "n").ToString();
        var options = SplitLikeQemu(text);
        Assert.Equal(["driver=file", "filename=" + evil, "node-name=n"], options);
    }

    [Theory]
    [InlineData("a\nb")]
    [InlineData("a\0b")]
    [InlineData("a\rb")]
    [InlineData("\u007f")]
    public void Control_characters_are_unsafe(string value) => Assert.False(QemuOptions.IsSafe(value));

    [Theory]
    [InlineData("/var/lib/kvm/ä b,c=d.qcow2")]
    [InlineData("")]
    public void Printable_text_is_safe(string value) => Assert.True(QemuOptions.IsSafe(value));

    // QEMU's option parser: a single comma separates, a doubled comma is a literal comma.
    private static List<string> SplitLikeQemu(string text)
    {
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',') { current.Append(','); i++; continue; }
                parts.Add(current.ToString());
                current.Clear();
                continue;
            }
            current.Append(text[i]);
        }
        parts.Add(current.ToString());
        return parts;
    }
}
