using System.Diagnostics;

namespace Kvm.Agent.Tests.Support;

/// <summary>Polls a condition until it holds or a deadline passes: tests never sleep blindly.</summary>
public static class Eventually
{
    public static async Task<TimeSpan> TrueAsync(Func<Task<bool>> condition, TimeSpan within, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < within)
        {
            if (await condition())
                return clock.Elapsed;
            await Task.Delay(20);
        }
        if (await condition())
            return clock.Elapsed;
        throw new Xunit.Sdk.XunitException($"Not true within {within.TotalSeconds:0.#} s: {what}");
    }

    public static Task<TimeSpan> TrueAsync(Func<bool> condition, TimeSpan within, string what) =>
        TrueAsync(() => Task.FromResult(condition()), within, what);
}
