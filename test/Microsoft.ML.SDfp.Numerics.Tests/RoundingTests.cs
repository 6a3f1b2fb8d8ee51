using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class RoundingTests : TorchTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Ties_round_half_to_even(bool fused)
    {
        // amax = 100 fixes e = 0 for 8 bits (100 <= 127), so x/2^e = x and the integers are the rounded values.
        float[] values = [0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 3.5f, -3.5f, 2.4999998f, 2.5000002f, 100f];
        long[] expected = [0, 2, 2, -2, 0, 4, -4, 2, 3, 100];
        using var x = tensor(values);
        var saved = QuantizationKernel.UseFused;
        try
        {
            QuantizationKernel.UseFused = fused;
            using var q = Dfp.Quantize(x, DfpFormat.Dfp(8));
            Assert.Equal(0, q.Exponent);
            Assert.Equal(expected, Longs(q.Integers));
        }
        finally
        {
            QuantizationKernel.UseFused = saved;
        }
    }

    [Fact]
    public void Ties_round_half_to_even_at_a_negative_exponent_too()
    {
        // amax = 1.9 gives e = -6 at 8 bits: x/2^e = 64x. 0.5/64 * 64 = 0.5 → 0; 2.5/64 → 2; -2.5/64 → -2; 1.5/64 → 2.
        using var x = tensor(new[] { 0.5f / 64, 1.5f / 64, 2.5f / 64, -2.5f / 64, 1.9f });
        using var q = Dfp.Quantize(x, DfpFormat.Dfp(8));
        Assert.Equal(-6, q.Exponent);
        Assert.Equal(new long[] { 0, 2, 2, -2, 122 }, Longs(q.Integers));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Stochastic_rounding_is_unbiased(bool fused)
    {
        // 0.3 at e = 0 rounds to 0 or 1; 200,000 draws give a mean within ±0.006 of 0.3 at 5 sigma (σ = 0.458/√n).
        const int n = 200_000;
        using var x = full(n, 0.3f);
        x[0] = tensor(100f);
        var format = DfpFormat.Dfp(8) with { Rounding = RoundingMode.Stochastic };
        var saved = QuantizationKernel.UseFused;
        try
        {
            QuantizationKernel.UseFused = fused;
            using var generator = new Generator(7);
            using var q = Dfp.FakeQuantize(x, format, generator);
            var values = Values(q);
            Assert.Equal(100f, values[0]);
            Assert.All(values.Skip(1), v => Assert.True(v is 0f or 1f));
            var mean = values.Skip(1).Average(v => (double)v);
            Assert.InRange(mean - 0.3, -0.006, 0.006);
        }
        finally
        {
            QuantizationKernel.UseFused = saved;
        }
    }

    [Fact]
    public void Stochastic_rounding_error_averages_to_zero_on_random_tensors()
    {
        var format = DfpFormat.SDfp(6, 1) with { Rounding = RoundingMode.Stochastic };
        using var x = Random(11, 50_000);
        var values = Values(x);
        using var generator = new Generator(3);
        var exponent = 0;
        var meanError = new double[values.Length];
        const int draws = 40;
        for (var d = 0; d < draws; d++)
        {
            using var q = Dfp.Quantize(x, format, generator);
            exponent = q.Exponent;
            var ints = Longs(q.Integers);
            for (var i = 0; i < values.Length; i++)
                meanError[i] += (ints[i] * Math.ScaleB(1, exponent) - values[i]) / draws;
        }
        // Only unsaturated values are unbiased; their mean error, in grid steps, must vanish (σ ≈ 0.5/√(40·n) ≈ 4e-4).
        var step = Math.ScaleB(1, exponent);
        var top = format.QMax * step;
        var inRange = Enumerable.Range(0, values.Length).Where(i => Math.Abs(values[i]) < top).ToArray();
        var bias = inRange.Average(i => meanError[i]) / step;
        Assert.InRange(bias, -0.003, 0.003);
    }

    [Fact]
    public void Stochastic_rounding_is_reproducible_for_a_seed_and_differs_between_seeds()
    {
        var format = DfpFormat.SDfp(8, 1) with { Rounding = RoundingMode.Stochastic };
        using var x = Random(5, 10_000);
        float[] Run(long seed)
        {
            using var quantizer = new TensorQuantizer("l", TensorRole.Error, format, seed: seed);
            using var first = quantizer.FakeQuantize(x);
            using var second = quantizer.FakeQuantize(x);
            return Values(first).Concat(Values(second)).ToArray();
        }
        var a = Run(1);
        Assert.Equal(a, Run(1));
        Assert.NotEqual(a, Run(2));
        // Successive steps of one stream draw fresh randomness.
        Assert.NotEqual(a.Take(10_000), a.Skip(10_000));
    }

    [Fact]
    public void Stream_seeds_differ_by_layer_and_role_and_are_stable()
    {
        var a = TensorQuantizer.StreamSeed(0, "conv1", TensorRole.Error);
        Assert.Equal(a, TensorQuantizer.StreamSeed(0, "conv1", TensorRole.Error));
        Assert.NotEqual(a, TensorQuantizer.StreamSeed(0, "conv1", TensorRole.Activation));
        Assert.NotEqual(a, TensorQuantizer.StreamSeed(0, "conv2", TensorRole.Error));
        Assert.NotEqual(a, TensorQuantizer.StreamSeed(1, "conv1", TensorRole.Error));
    }
}
