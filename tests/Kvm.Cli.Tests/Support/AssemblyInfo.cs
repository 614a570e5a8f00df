// The agent is Linux-only, and so are these tests. They run one at a time: each starts QEMU under TCG on shared cores.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
[assembly: CollectionBehavior(DisableTestParallelization = true)]
