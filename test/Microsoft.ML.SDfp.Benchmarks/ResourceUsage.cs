using System.Runtime.InteropServices;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Minor page faults and CPU time of the whole process (all threads), from getrusage(2).</summary>
internal readonly record struct ResourceUsage(long MinorFaults, double CpuMilliseconds)
{
    public static ResourceUsage Read()
    {
        if (!OperatingSystem.IsLinux() || GetResourceUsage(0, out var usage) != 0) // RUSAGE_SELF
            return default;
        var cpu = (usage.UserSeconds + usage.SystemSeconds) * 1000.0 + (usage.UserMicroseconds + usage.SystemMicroseconds) / 1000.0;
        return new ResourceUsage(usage.MinorFaults, cpu);
    }

    /// <summary>Current resident set size in MiB (VmRSS), or NaN where /proc is not there.</summary>
    public static double ResidentMegabytes()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts is { Length: >= 2 } && long.TryParse(parts[1], out var kib) ? kib / 1024.0 : double.NaN;
        }
        catch (IOException)
        {
            return double.NaN;
        }
    }

    public static ResourceUsage operator -(ResourceUsage a, ResourceUsage b) =>
        new(a.MinorFaults - b.MinorFaults, a.CpuMilliseconds - b.CpuMilliseconds);

    [DllImport("libc.so.6", EntryPoint = "getrusage")]
    private static extern int GetResourceUsage(int who, out RUsage usage);

    /// <summary>struct rusage on Linux x86-64: two timevals, then fourteen longs.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSeconds, UserMicroseconds, SystemSeconds, SystemMicroseconds;
        public long MaxRss, SharedRss, DataRss, StackRss, MinorFaults, MajorFaults, Swaps, BlockIn, BlockOut,
            MessagesSent, MessagesReceived, Signals, VoluntarySwitches, InvoluntarySwitches;
    }
}
