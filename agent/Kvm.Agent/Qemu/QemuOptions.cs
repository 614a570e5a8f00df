using System.Text;

namespace Kvm.Agent.Qemu;

/// <summary>
/// QEMU's <c>key=value,key=value</c> option syntax. A comma inside a value ends the value and starts a
/// new option (<c>file=a.qcow2,readonly=on</c>), so every value is written with commas doubled, which
/// QEMU reads back as one literal comma.
/// </summary>
public static class QemuOptions
{
    /// <summary>Doubles every comma so the value stays one value.</summary>
    public static string Escape(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Replace(",", ",,", StringComparison.Ordinal);
    }

    /// <summary>
    /// Whether QEMU can be handed the value at all: control characters (NUL, newline, …) survive neither
    /// argv nor the option parser intact, and a value that contains them is never a real file name here.
    /// </summary>
    public static bool IsSafe(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        foreach (var c in value)
            if (char.IsControl(c))
                return false;
        return true;
    }

    /// <summary>Starts an option string with its implied first value (a driver or backend type).</summary>
    public static Builder Of(string head) => new(head);

    /// <summary>Accumulates one option string; values are escaped as they are added.</summary>
    public sealed class Builder
    {
        private readonly StringBuilder _text = new();

        internal Builder(string head) => _text.Append(Escape(head));

        /// <summary>Adds <c>key=value</c>.</summary>
        public Builder Add(string key, string value)
        {
            _text.Append(',').Append(key).Append('=').Append(Escape(value));
            return this;
        }

        /// <summary>Adds <c>key=value</c> for a number.</summary>
        public Builder Add(string key, long value) => Add(key, value.ToString(System.Globalization.CultureInfo.InvariantCulture));

        /// <summary>Adds <c>key=on</c> or <c>key=off</c>.</summary>
        public Builder Add(string key, bool value) => Add(key, value ? "on" : "off");

        /// <summary>Adds <c>key=value</c> when the value is not null.</summary>
        public Builder AddIf(string key, string? value) => value is null ? this : Add(key, value);

        /// <summary>Adds <c>key=value</c> when the condition holds.</summary>
        public Builder AddIf(bool condition, string key, string value) => condition ? Add(key, value) : this;

        /// <inheritdoc />
        public override string ToString() => _text.ToString();
    }
}
