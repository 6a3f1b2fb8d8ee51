using Microsoft.ML.SDfp.Numerics.Formats;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>Dispatches quantisation to the fused FP32 CPU kernel where it applies, else to plain torch ops.</summary>
internal static class QuantizationKernel
{
    [ThreadStatic]
    private static bool _forceReference;

    /// <summary>Set to false (tests, A/B benchmarks) to force the torch-op path on the calling thread.</summary>
    internal static bool UseFused
    {
        get => !_forceReference;
        set => _forceReference = !value;
    }

    /// <summary>max |x|; NaN (fused path) or NaN/+∞ (torch path) when any element is not finite.</summary>
    public static double Amax(Tensor x)
    {
        QuantizationCounters.Pass(x.numel());
        return UseFused && FusedQuantization.Applies(x) ? FusedQuantization.Amax(x) : TorchQuantization.Amax(x);
    }

    /// <summary>True when the QuantizeMeasuringAmax overloads may be used for <paramref name="x"/>.</summary>
    public static bool FusedApplies(Tensor x) => UseFused && FusedQuantization.Applies(x);

    /// <summary>Quantises and measures max |x| (NaN when not finite) in one pass; fused path only.</summary>
    public static Tensor QuantizeMeasuringAmax(Tensor x, int exponent, DfpFormat format, Generator? generator, bool fake,
        bool collect, out QuantizationStatistics statistics, out double amax) =>
        QuantizeMeasuringAmax(x, exponent, format, Seed(format, generator), fake, collect, out statistics, out amax);

    /// <summary>
    /// As above with the stochastic-rounding key already drawn (<see cref="Seed"/>), so that a tensor quantised again
    /// with another exponent rounds with the same draw as a single quantisation would have.
    /// </summary>
    public static Tensor QuantizeMeasuringAmax(Tensor x, int exponent, DfpFormat format, ulong seed, bool fake,
        bool collect, out QuantizationStatistics statistics, out double amax)
    {
        QuantizationCounters.Pass(x.numel());
        return FusedQuantization.Quantize(x, exponent, format, seed, fake, collect, out statistics, out amax);
    }

    public static long CountNonFinite(Tensor x) => TorchQuantization.CountNonFinite(x);

    /// <summary>q = clamp(round(x / 2^exponent), qmin, qmax) as whole numbers in x's floating dtype.</summary>
    public static Tensor Integers(Tensor x, int exponent, DfpFormat format, Generator? generator,
        bool collect, out QuantizationStatistics statistics)
    {
        QuantizationCounters.Pass(x.numel());
        return UseFused && FusedQuantization.Applies(x)
            ? FusedQuantization.Quantize(x, exponent, format, Seed(format, generator), fake: false, collect, out statistics)
            : TorchQuantization.Integers(x, exponent, format, generator, collect, out statistics);
    }

    /// <summary>x' = q · 2^exponent as a new tensor.</summary>
    public static Tensor FakeQuantize(Tensor x, int exponent, DfpFormat format, Generator? generator,
        bool collect, out QuantizationStatistics statistics)
    {
        QuantizationCounters.Pass(x.numel());
        return UseFused && FusedQuantization.Applies(x)
            ? FusedQuantization.Quantize(x, exponent, format, Seed(format, generator), fake: true, collect, out statistics)
            : TorchQuantization.FakeQuantize(x, exponent, format, generator, collect, out statistics);
    }

    /// <summary>One draw from the stream's generator keys the stateless hash of the fused stochastic rounding.</summary>
    public static ulong Seed(DfpFormat format, Generator? generator)
    {
        if (format.Rounding != RoundingMode.Stochastic)
            return 0;
        using var draw = randint(0, int.MaxValue, [2], dtype: ScalarType.Int64, generator: generator);
        var values = draw.data<long>().ToArray();
        return ((ulong)values[0] << 32) ^ (ulong)values[1];
    }
}
