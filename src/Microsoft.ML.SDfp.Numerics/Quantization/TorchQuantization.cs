using Microsoft.ML.SDfp.Numerics.Formats;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// Quantisation written with plain torch ops. It handles any floating dtype, layout and device, and is the reference
/// the fused kernel is tested against; the fused kernel takes over for contiguous FP32 CPU tensors.
/// </summary>
internal static class TorchQuantization
{
    /// <summary>max |x|; NaN or +∞ when the tensor holds a NaN or an infinity.</summary>
    public static double Amax(Tensor x)
    {
        if (x.numel() == 0)
            return 0;
        using var scope = NewDisposeScope();
        using var max = x.abs().max();
        return max.to_type(ScalarType.Float64).item<double>();
    }

    public static long CountNonFinite(Tensor x)
    {
        using var scope = NewDisposeScope();
        return torch.isfinite(x).logical_not_().sum().item<long>();
    }

    /// <summary>
    /// The integers q = clamp(round(x / 2^exponent), qmin, qmax) as an FP32 tensor of whole numbers, and optionally the
    /// statistics of the quantisation.
    /// </summary>
    public static Tensor Integers(Tensor x, int exponent, DfpFormat format, Generator? generator,
        bool collect, out QuantizationStatistics statistics)
    {
        using var scope = NewDisposeScope();
        var y = x.mul(Math.ScaleB(1.0, -exponent));
        statistics = default;
        long saturated = 0;
        if (collect)
            saturated = y.gt(format.QMax).sum().item<long>() + y.lt(format.QMin).sum().item<long>();
        if (format.Rounding == RoundingMode.Stochastic)
        {
            // floor + (u < frac) rather than floor(y + u): adding u to y would round in FP32 and bias the result.
            var floor = y.floor();
            var up = torch.rand(y.shape, y.dtype, y.device, generator: generator).lt_(y.sub_(floor));
            y = floor.add_(up);
        }
        else
            y.round_();
        y.clamp_(format.QMin, format.QMax);
        if (collect)
        {
            var nonZero = x.ne(0);
            var flushed = nonZero.logical_and(y.eq(0)).sum().item<long>();
            var values = y.mul(Math.ScaleB(1.0, exponent));
            var x64 = x.to_type(ScalarType.Float64);
            var signal = x64.square().sum().item<double>();
            var error = x64.sub(values.to_type(ScalarType.Float64)).square().sum().item<double>();
            statistics = new QuantizationStatistics(x.numel(), nonZero.sum().item<long>(), saturated, flushed, signal, error);
        }
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>x' = q · 2^exponent as a new tensor of x's dtype.</summary>
    public static Tensor FakeQuantize(Tensor x, int exponent, DfpFormat format, Generator? generator,
        bool collect, out QuantizationStatistics statistics)
    {
        var q = Integers(x, exponent, format, generator, collect, out statistics);
        return q.mul_(Math.ScaleB(1.0, exponent));
    }
}
