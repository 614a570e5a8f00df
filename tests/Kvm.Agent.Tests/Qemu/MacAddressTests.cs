using System.Text.RegularExpressions;
using Kvm.Agent.Qemu;

namespace Kvm.Agent.Tests.Qemu;

public sealed class MacAddressTests
{
    [Fact]
    public void Is_stable_for_the_same_vm_and_slot() =>
        Assert.Equal(MacAddress.Generate(100, "net0"), MacAddress.Generate(100, "net0"));

    [Fact]
    public void Pins_the_algorithm_so_upgrades_never_change_a_guests_MAC() =>
        Assert.Equal("52:08:F2:86:57:67", MacAddress.Generate(100, "net0"));

    [Fact]
    public void Differs_by_vm_slot_and_salt()
    {
        var all = new[]
        {
            MacAddress.Generate(100, "net0"), MacAddress.Generate(100, "net1"), MacAddress.Generate(101, "net0"),
            MacAddress.Generate(100, "net0", "host-a"), MacAddress.Generate(100, "net0", "host-b"),
        };
        Assert.Equal(all.Length, all.Distinct().Count());
    }

    [Fact]
    public void Is_a_locally_administered_unicast_address()
    {
        for (var id = 100; id < 1100; id++)
        {
            var mac = MacAddress.Generate(id, "net" + (id % 32));
            Assert.Matches(new Regex("^[0-9A-F]{2}(:[0-9A-F]{2}){5}$"), mac);
            var first = Convert.ToByte(mac[..2], 16);
            Assert.Equal(0, first & 1);
            Assert.Equal(2, first & 2);
        }
    }

    [Fact]
    public void Thousands_of_NICs_get_distinct_addresses()
    {
        var macs = Enumerable.Range(100, 4000).SelectMany(id => new[] { "net0", "net1" }.Select(s => MacAddress.Generate(id, s))).ToList();
        Assert.Equal(macs.Count, macs.Distinct().Count());
    }
}
