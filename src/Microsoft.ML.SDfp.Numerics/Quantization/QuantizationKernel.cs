using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics;

/// <summary>Dispatches quantisation to the fused FP32 CPU kernel where it applies, else to plain torch ops.</summary>
internal static class QuantizationKernel
{
    public static double Amax(Tensor x) => TorchQuantization.Amax(x);

    public static long CountNonFinite(Tensor x) => TorchQuantization.CountNonFinite(x);

    public static Tensor Integers(Tensor x, int exponent, DfpFormat format, Generator? generator,
        bool collect, out QuantizationStatistics statistics) =>
        TorchQuantization.Integers(x, exponent, format, generator, collect, out statistics);

    public static Tensor FakeQuantize(Tensor x, int exponent, DfpFormat format, Generator? generator,
        bool collect, out QuantizationStatistics statistics) =>
        TorchQuantization.FakeQuantize(x, exponent, format, generator, collect, out statistics);
}
