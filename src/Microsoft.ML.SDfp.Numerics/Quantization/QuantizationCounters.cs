using System.Diagnostics;
using Microsoft.ML.SDfp.Numerics.Formats;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// Process-wide counters of the quantisers' work (time per role, passes over memory, exponent guesses that missed),
/// for the step benchmark's per-phase breakdown. Off unless a benchmark turns them on, so training pays one branch.
/// </summary>
internal static class QuantizationCounters
{
    private static readonly long[] _ticks = new long[4];
    private static readonly long[] _calls = new long[4];
    private static long _passes, _misses, _elements;

    /// <summary>Whether quantisers record their time and passes.</summary>
    public static bool Enabled { get; set; }

    public static long Start() => Enabled ? Stopwatch.GetTimestamp() : 0;

    public static void Stop(TensorRole role, long start)
    {
        if (!Enabled)
            return;
        Interlocked.Add(ref _ticks[(int)role], Stopwatch.GetTimestamp() - start);
        Interlocked.Increment(ref _calls[(int)role]);
    }

    /// <summary>Counts one pass over <paramref name="elements"/> input elements (an amax scan or a quantising pass).</summary>
    public static void Pass(long elements)
    {
        if (!Enabled)
            return;
        Interlocked.Increment(ref _passes);
        Interlocked.Add(ref _elements, elements);
    }

    public static void Miss()
    {
        if (Enabled)
            Interlocked.Increment(ref _misses);
    }

    /// <summary>The counts so far; subtract two snapshots for one step.</summary>
    public static Snapshot Read() => new(
        [.. _ticks.Select(t => Interlocked.Read(ref t) * 1000.0 / Stopwatch.Frequency)],
        [.. _calls], Interlocked.Read(ref _passes), Interlocked.Read(ref _misses), Interlocked.Read(ref _elements));

    /// <summary>Milliseconds and calls per role (indexed by <see cref="TensorRole"/>), passes, missed guesses, elements passed over.</summary>
    internal sealed record Snapshot(double[] Milliseconds, long[] Calls, long Passes, long Misses, long Elements)
    {
        public static Snapshot operator -(Snapshot a, Snapshot b) => new(
            [.. a.Milliseconds.Zip(b.Milliseconds, (x, y) => x - y)], [.. a.Calls.Zip(b.Calls, (x, y) => x - y)],
            a.Passes - b.Passes, a.Misses - b.Misses, a.Elements - b.Elements);
    }
}
