// The agent is Linux-only (posix_spawn, /proc, QMP over unix sockets), and so are its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
