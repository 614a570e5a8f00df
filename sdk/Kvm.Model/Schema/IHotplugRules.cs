namespace Kvm.Model.Schema;

/// <summary>
/// A resource whose device maps can gain or lose entries while it runs (a VM's disks and network interfaces).
/// <see cref="Changes"/> asks it, for a map whose setting names a <see cref="SettingAttribute.Hotplug"/> class, whether
/// adding or removing one entry applies live. It is asked on the effective (defaulted) spec before and after the change.
/// </summary>
public interface IHotplugRules
{
    /// <summary>True when an entry <paramref name="key"/> of a map in hot-plug class <paramref name="hotplugClass"/> can be plugged or unplugged live.</summary>
    bool CanHotplug(string hotplugClass, string key);
}
