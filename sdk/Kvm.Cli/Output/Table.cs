namespace Kvm.Cli.Output;

/// <summary>An aligned text table: widths from the visible text, colour added after padding so columns stay aligned.</summary>
public sealed class Table(params string[] headers)
{
    private readonly List<(string Text, Color Color)[]> _rows = [];

    /// <summary>Adds a row of plain cells.</summary>
    public Table Add(params string[] cells) => Add([.. cells.Select(c => (c, Color.None))]);

    /// <summary>Adds a row with coloured cells.</summary>
    public Table Add(params (string Text, Color Color)[] cells)
    {
        if (cells.Length != headers.Length)
            throw new ArgumentException($"a row has {cells.Length} cells; the table has {headers.Length} columns.");
        _rows.Add(cells);
        return this;
    }

    /// <summary>Number of rows.</summary>
    public int Count => _rows.Count;

    /// <summary>Writes the table; trailing spaces are trimmed from each line.</summary>
    public void Write(TextWriter writer, bool color)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Text.Length))).ToArray();
        writer.WriteLine(Line([.. headers.Select(h => (h, Color.Bold))], widths, color));
        foreach (var row in _rows)
            writer.WriteLine(Line(row, widths, color));
    }

    private static string Line((string Text, Color Color)[] cells, int[] widths, bool color)
    {
        var parts = cells.Select((c, i) => Terminal.Paint(i == cells.Length - 1 ? c.Text : c.Text.PadRight(widths[i]), c.Color, color));
        return string.Join("  ", parts).TrimEnd();
    }
}
