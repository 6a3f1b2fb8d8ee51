using Microsoft.ML.SDfp.Numerics.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// Picks the shift of one tensor: the candidate in [AutoShiftMin, AutoShiftMax] with the least quantisation mean
/// squared error on a strided sample of the tensor (plus its largest element, so that the sample never hides the
/// outlier that saturation would hurt most), subject to an optional saturated-fraction cap.
/// </summary>
/// <remarks>
/// Evaluating on at most <see cref="TensorQuantizer.AutoShiftSampleSize"/> elements keeps the cost independent of the
/// tensor size: one small strided copy and a few thousand scalar operations per candidate. Candidates are scored with
/// round-half-even even for stochastic formats, whose expected squared error ranks the shifts the same way.
/// </remarks>
internal static class AutoShift
{
    public static int Choose(Tensor x, double referenceAmax, double currentAmax, DfpFormat format)
    {
        var sample = Sample(x, TensorQuantizer.AutoShiftSampleSize);
        // Each sampled element stands for n/|sample| elements of the tensor, the maximum for itself alone.
        var weight = Math.Max(1.0, (x.numel() - 1) / (double)Math.Max(1, sample.Length));
        var best = format.AutoShiftMin;
        var bestError = double.PositiveInfinity;
        var bestSaturation = double.PositiveInfinity;
        var cap = format.MaxSaturatedFraction;
        var bestMeetsCap = false;
        for (var s = format.AutoShiftMin; s <= format.AutoShiftMax; s++)
        {
            var exponent = Dfp.Exponent(referenceAmax, format, s);
            var (error, saturated, maxError, maxSaturated) = Evaluate(sample, currentAmax, exponent, format);
            error = error * weight + maxError;
            var fraction = (saturated * weight + maxSaturated) / (sample.Length * weight + 1);
            var meetsCap = cap is null || fraction <= cap.Value;
            var better = meetsCap switch
            {
                true when !bestMeetsCap => true,
                true => error < bestError,
                false when bestMeetsCap => false,
                false => fraction < bestSaturation || (fraction == bestSaturation && error < bestError),
            };
            if (better)
            {
                best = s;
                bestError = error;
                bestSaturation = fraction;
                bestMeetsCap = meetsCap;
            }
        }
        return best;
    }

    /// <summary>Squared error and saturated count of the sample, and of the maximum element, at one exponent.</summary>
    internal static (double Error, long Saturated, double MaxError, long MaxSaturated) Evaluate(
        ReadOnlySpan<float> sample, double amax, int exponent, DfpFormat format)
    {
        var down = Math.ScaleB(1.0, -exponent);
        var up = Math.ScaleB(1.0, exponent);
        double qmax = format.QMax, qmin = format.QMin;
        var error = 0.0;
        long saturated = 0;
        foreach (double v in sample)
        {
            var y = v * down;
            if (y > qmax || y < qmin)
                saturated++;
            var q = Math.Clamp(Math.Round(y, MidpointRounding.ToEven), qmin, qmax);
            var d = v - q * up;
            error += d * d;
        }
        var yMax = amax * down;
        var maxError = amax - Math.Min(Math.Round(yMax, MidpointRounding.ToEven), qmax) * up;
        return (error, saturated, maxError * maxError, yMax > qmax ? 1 : 0);
    }

    /// <summary>
    /// Up to <paramref name="size"/> elements spread over the whole tensor by a golden-ratio (Weyl) sequence.
    /// </summary>
    /// <remarks>
    /// A fixed stride aliases with the tensor's layout: for a [256, 16, 28, 28] activation, numel / 4096 is exactly
    /// 28·28, so every sample was the same pixel of each plane and the chosen shift was fitted to image corners.
    /// The Weyl sequence has no period, so it cannot lock onto any dimension, and it stays deterministic.
    /// </remarks>
    internal static float[] Sample(Tensor x, int size)
    {
        using var scope = NewDisposeScope();
        var flat = x.reshape(-1);
        var n = flat.shape[0];
        if (n <= size)
            return flat.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
        const double goldenRatioConjugate = 0.6180339887498949;
        var indices = new long[size];
        for (var i = 0; i < size; i++)
        {
            var position = (i + 0.5) * goldenRatioConjugate;
            indices[i] = Math.Min(n - 1, (long)((position - Math.Floor(position)) * n));
        }
        using var index = tensor(indices, ScalarType.Int64);
        return flat.index_select(0, index).to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
    }
}
