using System.Globalization;
using System.Text.RegularExpressions;

namespace Kvm.Terraform;

/// <summary>Terraform's duration strings (<c>30s</c>, <c>10m</c>, <c>1h30m</c>), as in timeouts blocks.</summary>
public static partial class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        var matches = Part().Matches(text);
        if (text.Length == 0 || string.Concat(matches.Select(m => m.Value)) != text)
            return false;
        foreach (Match m in matches)
        {
            var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            value += m.Groups[2].Value switch
            {
                "h" => TimeSpan.FromHours(n),
                "m" => TimeSpan.FromMinutes(n),
                "s" => TimeSpan.FromSeconds(n),
                _ => TimeSpan.FromMilliseconds(n),
            };
        }
        return true;
    }

    [GeneratedRegex("([0-9]+(?:\\.[0-9]+)?)(ms|h|m|s)")]
    private static partial Regex Part();
}
