namespace Kvm.Cli.Output;

/// <summary>What the process is attached to: colours and progress only for people at a terminal.</summary>
public static class Terminal
{
    private static bool Plain => Environment.GetEnvironmentVariable("NO_COLOR") is { Length: > 0 } || Environment.GetEnvironmentVariable("TERM") == "dumb";

    /// <summary>Colour stdout: a terminal, and NO_COLOR unset (https://no-color.org).</summary>
    public static bool ColorOut { get; } = !Console.IsOutputRedirected && !Plain;

    /// <summary>Colour stderr.</summary>
    public static bool ColorErr { get; } = !Console.IsErrorRedirected && !Plain;

    /// <summary>Progress goes to stderr, so it never mixes with output a script reads.</summary>
    public static bool ProgressAllowed { get; } = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";

    /// <summary>Wraps text in an SGR colour when <paramref name="enabled"/>.</summary>
    public static string Paint(string text, Color color, bool enabled) =>
        enabled && color != Color.None ? $"\u001b[{(int)color}m{text}\u001b[0m" : text;

    /// <summary>Colour for a VM status.</summary>
    public static Color ForStatus(string? status) => status switch
    {
        "running" => Color.Green,
        "paused" or "suspended" => Color.Yellow,
        "stopped" => Color.None,
        null => Color.None,
        _ => Color.Red,
    };
}

/// <summary>SGR foreground colours.</summary>
public enum Color
{
    /// <summary>No colour.</summary>
    None = 0,
    /// <summary>Errors, failed states.</summary>
    Red = 31,
    /// <summary>Running, done.</summary>
    Green = 32,
    /// <summary>Paused, pending.</summary>
    Yellow = 33,
    /// <summary>Headers.</summary>
    Bold = 1,
    /// <summary>Hints.</summary>
    Dim = 2,
}

/// <summary>A spinner on stderr while a long operation runs; nothing at all when stderr is not a terminal.</summary>
public sealed class Progress : IDisposable
{
    private static readonly string[] Frames = ["|", "/", "-", "\\"];
    private readonly Timer? _timer;
    private readonly string _text;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private int _frame;
    private bool _done;

    private Progress(string text)
    {
        _text = text;
        if (Terminal.ProgressAllowed)
            _timer = new Timer(_ => Draw(), null, TimeSpan.FromMilliseconds(150), TimeSpan.FromMilliseconds(120));
    }

    /// <summary>Starts a spinner labelled <paramref name="text"/>.</summary>
    public static Progress Start(string text) => new(text);

    private void Draw()
    {
        lock (_gate)
        {
            if (_done)
                return;
            Console.Error.Write($"\r{Frames[_frame++ % Frames.Length]} {_text} {_clock.Elapsed.TotalSeconds:0}s ");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _timer?.Dispose();
        lock (_gate)
        {
            if (!_done && _timer is not null && _frame > 0)
                Console.Error.Write("\r\u001b[2K");
            _done = true;
        }
    }
}
