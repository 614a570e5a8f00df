using System.CommandLine;
using Kvm.Cli.Options;
using Kvm.Cli.Output;
using Kvm.Client;
using Kvm.Model;
using Kvm.Model.Schema;
using Kvm.Model.Validation;

namespace Kvm.Cli.Commands;

/// <summary>Standalone volumes and storage pools.</summary>
public static class StorageCommands
{
    /// <summary><c>volumes</c> (list) with create, resize, delete.</summary>
    public static Command Volumes(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("volumes", "List standalone volumes (VM disks that outlive VMs); see the subcommands to manage them.") { output },
            "kvmctl volumes", "kvmctl volumes create data.qcow2 --size 20G", "kvmctl volumes resize default/data.qcow2 +10G", "kvmctl volumes delete default/data.qcow2");
        command.SetAction((parsed, ct) => ListVolumes(cli, parsed, output, ct));
        var listOutput = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var list = cli.Examples(new Command("list", "List volumes.") { listOutput }, "kvmctl volumes list --output json");
        list.SetAction((parsed, ct) => ListVolumes(cli, parsed, listOutput, ct));
        command.Subcommands.Add(list);
        command.Subcommands.Add(CreateVolume(cli));
        command.Subcommands.Add(ResizeVolume(cli));
        command.Subcommands.Add(DeleteVolume(cli));
        return command;
    }

    private static Task<int> ListVolumes(Cli cli, ParseResult parsed, OutputOption output, CancellationToken ct) =>
        cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var volumes = await client.ListVolumesAsync(token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, volumes.ToList(), format);
                return ExitCodes.Ok;
            }
            var table = new Table("VOLUME", "FORMAT", "SIZE", "USED", "ATTACHED TO");
            foreach (var v in volumes)
                table.Add(v.VolumeId ?? $"{v.Pool}/{v.Name}", v.Format ?? "qcow2", Formats.Bytes(v.CapacityBytes ?? v.SizeGib * 1024L * 1024 * 1024), Formats.Bytes(v.AllocationBytes), string.Join(", ", v.AttachedTo ?? []));
            if (table.Count == 0)
                cli.Err.WriteLine("no volumes. Create one: kvmctl volumes create data.qcow2 --size 20G");
            else
                table.Write(cli.Out, Terminal.ColorOut);
            return ExitCodes.Ok;
        }, ct);

    private static Argument<string> VolumeRef() => new("VOLUME") { Description = "POOL/NAME, or NAME in the default pool." };

    private static (string Pool, string Name) Split(string reference)
    {
        var slash = reference.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? ("default", reference) : (reference[..slash], reference[(slash + 1)..]);
    }

    private static Command CreateVolume(Cli cli)
    {
        var name = VolumeRef();
        var size = new Option<string>("--size") { Description = "Size: 20G, 1T, or whole GiB.", HelpName = "SIZE", Required = true };
        var format = new Option<string?>("--format") { Description = "qcow2 (default) or raw.", HelpName = "FORMAT" };
        var preallocation = new Option<string?>("--preallocation") { Description = "off (default), metadata, falloc, full.", HelpName = "MODE" };
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("create", "Create a standalone volume; attach it with --disk SLOT=volume:POOL/NAME.") { name, size, format, preallocation, output },
            "kvmctl volumes create data.qcow2 --size 20G", "kvmctl volumes create fast/scratch.raw --size 100G --format raw --preallocation falloc");
        command.SetAction((parsed, ct) =>
        {
            var (pool, volumeName) = Split(parsed.GetValue(name)!);
            var origins = new OptionOrigins();
            var spec = new VolumeSpec { Name = volumeName, Pool = pool, Format = parsed.GetValue(format), Preallocation = parsed.GetValue(preallocation) };
            origins.Record(AttrPath.Root.Attr("name"), $"VOLUME {parsed.GetValue(name)}");
            origins.Record(AttrPath.Root.Attr("pool"), $"VOLUME {parsed.GetValue(name)}");
            origins.Record(AttrPath.Root.Attr("format"), $"--format {spec.Format}");
            origins.Record(AttrPath.Root.Attr("preallocation"), $"--preallocation {spec.Preallocation}");
            origins.Record(AttrPath.Root.Attr("size_gib"), $"--size {parsed.GetValue(size)}");
            try
            {
                spec.SizeGib = DeviceSyntax.SizeGib(parsed.GetValue(size)!);
                Cli.ThrowIfInvalid(Validator.Validate(spec), origins);
            }
            catch (FormatException e)
            {
                return Task.FromResult(cli.Fail(CliException.Usage($"--size {parsed.GetValue(size)}: {e.Message}")));
            }
            catch (CliException e)
            {
                return Task.FromResult(cli.Fail(e));
            }
            return cli.RunAsync(parsed, TimeSpan.FromMinutes(30), async (client, token) =>
            {
                Volume volume;
                try
                {
                    using (Progress.Start("creating the volume"))
                        volume = (await client.CreateVolumeAsync(spec, Guid.NewGuid().ToString("N"), token)).Value;
                }
                catch (KvmApiException e)
                {
                    throw Cli.Problem(e, origins);
                }
                if (output.Get(parsed) is var f && f != Format.Table)
                    Formats.Write(cli.Out, volume, f);
                else
                    cli.Out.WriteLine($"volume {volume.VolumeId} created ({volume.SizeGib} GiB {volume.Format ?? "qcow2"}). Attach it: kvmctl set ID --disk scsi1=volume:{volume.VolumeId}");
                return ExitCodes.Ok;
            }, ct);
        });
        return command;
    }

    private static Command ResizeVolume(Cli cli)
    {
        var name = VolumeRef();
        var size = new Argument<string>("SIZE") { Description = "New size (30G) or growth (+10G). Volumes only grow." };
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("resize", "Grow a volume (live while a running VM uses it), like qm resize.") { name, size, output },
            "kvmctl volumes resize default/data.qcow2 +10G", "kvmctl volumes resize data.qcow2 50G");
        command.SetAction((parsed, ct) =>
        {
            var text = parsed.GetValue(size)!;
            long amount;
            try
            {
                amount = DeviceSyntax.SizeGib(text.TrimStart('+'));
            }
            catch (FormatException e)
            {
                return Task.FromResult(cli.Fail(CliException.Usage($"SIZE {text}: {e.Message}")));
            }
            return cli.RunAsync(parsed, TimeSpan.FromMinutes(10), async (client, token) =>
            {
                var (pool, volumeName) = Split(parsed.GetValue(name)!);
                var (current, etag) = await client.GetVolumeAsync(pool, volumeName, token);
                var spec = new VolumeSpec { Name = current.Name, Pool = current.Pool, SizeGib = text.StartsWith('+') ? current.SizeGib + amount : amount, Format = current.Format, Preallocation = current.Preallocation };
                var origins = new OptionOrigins();
                origins.Record(AttrPath.Root.Attr("size_gib"), $"SIZE {text}");
                Cli.ThrowIfInvalid([.. Validator.Validate(spec), .. spec.ValidateUpdate(current)], origins);
                Volume volume;
                try
                {
                    volume = (await client.UpdateVolumeAsync(pool, volumeName, spec, etag, token)).Value;
                }
                catch (KvmApiException e)
                {
                    throw Cli.Problem(e, origins);
                }
                if (output.Get(parsed) is var f && f != Format.Table)
                    Formats.Write(cli.Out, volume, f);
                else
                    cli.Out.WriteLine($"volume {volume.VolumeId} is now {volume.SizeGib} GiB.");
                return ExitCodes.Ok;
            }, ct);
        });
        return command;
    }

    private static Command DeleteVolume(Cli cli)
    {
        var name = VolumeRef();
        var command = cli.Examples(new Command("delete", "Delete a volume (refused while a VM uses it).") { name }, "kvmctl volumes delete default/data.qcow2");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, TimeSpan.FromMinutes(5), async (client, token) =>
        {
            var (pool, volumeName) = Split(parsed.GetValue(name)!);
            await client.DeleteVolumeAsync(pool, volumeName, token);
            cli.Out.WriteLine($"volume {pool}/{volumeName} deleted.");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    /// <summary><c>images</c> (list) with import and delete.</summary>
    public static Command Images(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("images", "List imported images: read-only bases that VM disks copy or clone (disks.*.image_id).") { output },
            "kvmctl images", "kvmctl images import debian-12.qcow2 --url https://images.lab/debian-12.qcow2 --sha256 HEX", "kvmctl images delete default/debian-12.qcow2");
        command.SetAction((parsed, ct) => ListImages(cli, parsed, output, ct));
        var listOutput = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var list = cli.Examples(new Command("list", "List images.") { listOutput }, "kvmctl images list --output json");
        list.SetAction((parsed, ct) => ListImages(cli, parsed, listOutput, ct));
        command.Subcommands.Add(list);
        command.Subcommands.Add(ImportImage(cli));
        command.Subcommands.Add(DeleteImage(cli));
        return command;
    }

    private static Task<int> ListImages(Cli cli, ParseResult parsed, OutputOption output, CancellationToken ct) =>
        cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var images = await client.ListImagesAsync(token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, images.ToList(), format);
                return ExitCodes.Ok;
            }
            var table = new Table("IMAGE", "FORMAT", "VIRTUAL SIZE", "USED", "LINKED CLONES");
            foreach (var i in images)
                table.Add(i.ImageId ?? $"{i.Pool}/{i.Name}", i.Format ?? "", Formats.Bytes(i.VirtualSizeBytes), Formats.Bytes(i.SizeBytes), string.Join(", ", i.UsedBy ?? []));
            if (table.Count == 0)
                cli.Err.WriteLine("no images. Import one: kvmctl images import NAME --url URL [--sha256 HEX]");
            else
                table.Write(cli.Out, Terminal.ColorOut);
            return ExitCodes.Ok;
        }, ct);

    private static Command ImportImage(Cli cli)
    {
        var name = new Argument<string>("NAME") { Description = "Image file name in its pool, e.g. debian-12.qcow2." };
        var pool = new Option<string?>("--pool") { Description = "Storage pool (default: default)." };
        var url = new Option<string?>("--url") { Description = "http(s) URL to download (streamed, decompressed by suffix)." };
        var source = new Option<string?>("--source-path") { Description = "A file already on the agent's host to copy." };
        var sha256 = new Option<string?>("--sha256") { Description = "Expected sha256 of the downloaded bytes." };
        var convert = new Option<string?>("--convert-to") { Description = "qcow2 or raw." };
        var command = cli.Examples(new Command("import", "Import an image from a URL or a host file (checksum verified; nothing is left behind on failure).") { name, pool, url, source, sha256, convert },
            "kvmctl images import debian-12.qcow2 --url https://images.lab/debian-12-genericcloud-amd64.qcow2");
        command.SetAction((parsed, ct) =>
        {
            var spec = new ImageSpec
            {
                Name = parsed.GetValue(name),
                Pool = parsed.GetValue(pool),
                Url = parsed.GetValue(url),
                SourcePath = parsed.GetValue(source),
                Checksum = parsed.GetValue(sha256),
                ConvertTo = parsed.GetValue(convert),
            };
            var origins = new OptionOrigins();
            origins.Record(AttrPath.Root.Attr("name"), $"NAME {spec.Name}");
            origins.Record(AttrPath.Root.Attr("pool"), $"--pool {spec.Pool}");
            origins.Record(AttrPath.Root.Attr("url"), $"--url {spec.Url}");
            origins.Record(AttrPath.Root.Attr("source_path"), $"--source-path {spec.SourcePath}");
            origins.Record(AttrPath.Root.Attr("checksum"), $"--sha256 {spec.Checksum}");
            origins.Record(AttrPath.Root.Attr("convert_to"), $"--convert-to {spec.ConvertTo}");
            return cli.SubmitAsync(parsed, TimeSpan.FromHours(1), spec, origins, async (client, token) =>
            {
                var image = (await client.CreateImageAsync(spec, token)).Value;
                cli.Out.WriteLine($"image {image.ImageId} imported ({image.Format}, {Formats.Bytes(image.VirtualSizeBytes)}).");
                return ExitCodes.Ok;
            }, ct);
        });
        return command;
    }

    private static Command DeleteImage(Cli cli)
    {
        var image = new Argument<string>("IMAGE") { Description = "POOL/NAME, or NAME in the default pool." };
        var command = cli.Examples(new Command("delete", "Delete an image (refused while a linked clone uses it).") { image }, "kvmctl images delete default/debian-12.qcow2");
        command.SetAction((parsed, ct) => cli.RunAsync(parsed, TimeSpan.FromMinutes(5), async (client, token) =>
        {
            var (pool, imageName) = Split(parsed.GetValue(image)!);
            await client.DeleteImageAsync(pool, imageName, token);
            cli.Out.WriteLine($"image {pool}/{imageName} deleted.");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    /// <summary><c>pools</c> (list) with create and delete.</summary>
    public static Command Pools(Cli cli)
    {
        var output = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var command = cli.Examples(new Command("pools", "List storage pools (directories that hold volumes, inline disks and ISOs).") { output },
            "kvmctl pools", "kvmctl pools create fast --path /srv/fast", "kvmctl pools delete fast");
        command.SetAction((parsed, ct) => ListPools(cli, parsed, output, ct));
        var listOutput = Formats.Option(Format.Table, Format.Json, Format.Yaml);
        var list = cli.Examples(new Command("list", "List storage pools.") { listOutput }, "kvmctl pools list -o json");
        list.SetAction((parsed, ct) => ListPools(cli, parsed, listOutput, ct));
        command.Subcommands.Add(list);

        var name = new Argument<string>("NAME") { Description = "Pool name." };
        var type = new Option<string>("--type") { Description = "Pool type: dir, lvm-thin or nfs.", HelpName = "TYPE", DefaultValueFactory = _ => "dir" };
        var path = new Option<string?>("--path") { Description = "dir: absolute directory on the agent's host; created when missing.", HelpName = "DIR" };
        var volumeGroup = new Option<string?>("--volume-group") { Description = "lvm-thin: the volume group that holds the thin pool.", HelpName = "VG" };
        var thinPool = new Option<string?>("--thin-pool") { Description = "lvm-thin: the thin pool logical volume.", HelpName = "LV" };
        var server = new Option<string?>("--server") { Description = "nfs: the NFS server.", HelpName = "HOST" };
        var export = new Option<string?>("--export") { Description = "nfs: the exported directory.", HelpName = "DIR" };
        var mountOptions = new Option<string?>("--mount-options") { Description = "nfs: mount options, e.g. vers=4.2,soft.", HelpName = "OPTS" };
        var create = cli.Examples(new Command("create", "Create a storage pool: a directory, an LVM thin pool or an NFS export.")
            { name, type, path, volumeGroup, thinPool, server, export, mountOptions },
            "kvmctl pools create fast --path /srv/fast",
            "kvmctl pools create thin --type lvm-thin --volume-group pve --thin-pool data",
            "kvmctl pools create nas --type nfs --server nas.example --export /srv/vm --mount-options vers=4.2");
        create.SetAction((parsed, ct) =>
        {
            var spec = new StoragePoolSpec
            {
                Name = parsed.GetValue(name), Type = parsed.GetValue(type), Path = parsed.GetValue(path),
                VolumeGroup = parsed.GetValue(volumeGroup), ThinPool = parsed.GetValue(thinPool),
                Server = parsed.GetValue(server), Export = parsed.GetValue(export), MountOptions = parsed.GetValue(mountOptions),
            };
            var origins = new OptionOrigins();
            origins.Record(AttrPath.Root.Attr("name"), $"NAME {spec.Name}");
            origins.Record(AttrPath.Root.Attr("type"), $"--type {spec.Type}");
            foreach (var (attribute, flag, value) in new[]
            {
                ("path", "--path", spec.Path), ("volume_group", "--volume-group", spec.VolumeGroup), ("thin_pool", "--thin-pool", spec.ThinPool),
                ("server", "--server", spec.Server), ("export", "--export", spec.Export), ("mount_options", "--mount-options", spec.MountOptions),
            })
            {
                origins.Record(AttrPath.Root.Attr(attribute), value is null ? flag : $"{flag} {value}");
            }
            return cli.SubmitAsync(parsed, Cli.Quick, spec, origins, async (client, token) =>
            {
                var pool = (await client.CreateStoragePoolAsync(spec, token)).Value;
                cli.Out.WriteLine($"pool {pool.Name} created at {pool.HostPath ?? pool.Path}.");
                return ExitCodes.Ok;
            }, ct);
        });
        command.Subcommands.Add(create);

        var deleteName = new Argument<string>("NAME") { Description = "Pool name." };
        var delete = cli.Examples(new Command("delete", "Delete a storage pool (the built-in default pool stays).") { deleteName }, "kvmctl pools delete fast");
        delete.SetAction((parsed, ct) => cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            await client.DeleteStoragePoolAsync(parsed.GetValue(deleteName)!, token);
            cli.Out.WriteLine($"pool {parsed.GetValue(deleteName)} deleted.");
            return ExitCodes.Ok;
        }, ct));
        command.Subcommands.Add(delete);
        return command;
    }

    private static Task<int> ListPools(Cli cli, ParseResult parsed, OutputOption output, CancellationToken ct) =>
        cli.RunAsync(parsed, Cli.Quick, async (client, token) =>
        {
            var pools = await client.ListStoragePoolsAsync(token);
            var format = output.Get(parsed);
            if (format != Format.Table)
            {
                Formats.Write(cli.Out, pools.ToList(), format);
                return ExitCodes.Ok;
            }
            var table = new Table("POOL", "TYPE", "PATH", "SIZE", "FREE");
            foreach (var p in pools)
                table.Add(p.Name + (p.Builtin == true ? " (built-in)" : ""), p.Type ?? "dir", p.HostPath ?? p.Path ?? "", Formats.Bytes(p.CapacityBytes), Formats.Bytes(p.AvailableBytes));
            table.Write(cli.Out, Terminal.ColorOut);
            return ExitCodes.Ok;
        }, ct);
}
