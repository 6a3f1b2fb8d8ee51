using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Which telemetry records of a Fashion-MNIST run are kept in its <c>.csv.gz</c>: what the report's plots and tables read,
/// at the resolution they are drawn at. Every record with full statistics is kept (those of the sampled steps, evaluation
/// passes on them included), because the flush-to-zero and saturation plots and the flush table read only those. Of the records
/// that carry only exponent, shift and amax, each (layer, role) keeps, per bucket of <see cref="BucketSteps"/> steps,
/// the first record with the bucket's lowest exponent and the first with its highest: the exponent plots draw thousands
/// of steps across a few hundred pixels, so what they show per pixel column is the range of the exponent, and one-step
/// excursions (common for the errors' exponent) survive, which keeping every N-th step would drop. Keeping every step
/// of the full mode is about 20 MB of CSV per run (4 MB gzip).
/// </summary>
internal static class TelemetrySampling
{
    /// <summary>
    /// Buckets per run: each spans about 1.5 pixel columns of the exponent plots' data area (about 760 of their 1,100 px).
    /// </summary>
    private const int BucketsPerRun = 500;

    /// <summary>The number of steps per bucket for a run of <paramref name="totalSteps"/> steps.</summary>
    public static int BucketSteps(long totalSteps) => (int)Math.Max(1, totalSteps / BucketsPerRun);

    /// <summary>The total number of training steps of a run.</summary>
    public static long TotalSteps(int trainSize, int batchSize, int epochs) => (long)Math.Ceiling(trainSize / (double)batchSize) * epochs;

    /// <summary>The kept records, in their original order. Applying it again with the same <paramref name="totalSteps"/> keeps all of them.</summary>
    public static List<TensorStatistics> Keep(IReadOnlyList<TensorStatistics> records, long totalSteps)
    {
        var bucket = BucketSteps(totalSteps);
        var extremes = new Dictionary<(string Layer, TensorRole Role, long Bucket), (TensorStatistics Low, TensorStatistics High)>();
        foreach (var s in records)
        {
            var key = (s.Layer, s.Role, s.Step / bucket);
            if (!extremes.TryGetValue(key, out var e))
                extremes[key] = (s, s);
            else if (s.Exponent < e.Low.Exponent)
                extremes[key] = (s, e.High);
            else if (s.Exponent > e.High.Exponent)
                extremes[key] = (e.Low, s);
        }
        var kept = new HashSet<TensorStatistics>(extremes.Values.SelectMany(e => new[] { e.Low, e.High }), ReferenceEqualityComparer.Instance);
        return records.Where(s => s.HasFullStatistics || kept.Contains(s)).ToList();
    }
}
