using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Tests;

/// <summary>
/// SDFP.md: with n ≤ 8 a product of two quantised operands is an exact integer times 2^(eA+eW), and an FP32 sum of K
/// such products is exact while K · 2^(2n−2) ≤ 2^24, i.e. K ≤ 1024 at 8 bits. So the FP32 layer output must equal an
/// int64 reference bit for bit.
/// </summary>
public class ExactnessTests : TorchTests
{
    [Theory]
    [InlineData(64, 3, 1)]  // K = 64·3·3 = 576, the ResNet 3×3 case
    [InlineData(64, 4, 0)]  // K = 64·4·4 = 1024, the bound itself
    public void Quantised_conv_forward_equals_an_int64_reference(int inChannels, int kernel, int padding)
    {
        var format = DfpFormat.SDfp(8, 1);
        using var conv = new QuantizedConv2d("conv", inChannels, 5, kernel, padding: padding,
            config: QuantizationConfig.Uniform(format));
        using var x = Random(1, 2, inChannels, 6, 6);
        using var y = conv.forward(x);

        using var qa = Dfp.Quantize(x, format);
        using var qw = Dfp.Quantize(conv.weight, format);
        var expected = Conv2dInt64(Longs(qa.Integers), Longs(qw.Integers), 2, inChannels, 6, 6, 5, kernel, padding);
        var actual = Values(y);
        var scale = Math.ScaleB(1, qa.Exponent + qw.Exponent);
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i] * scale, (double)actual[i]);
    }

    [Fact]
    public void Conv_at_the_worst_case_magnitude_K_1024_is_still_exact()
    {
        // S-DFP8(s=1) puts -1 at qmin = -128 · 2^-7 without saturating it. Every product is then 2^14 and every output
        // sums 1024 of them to 2^24, the largest integer FP32 still holds exactly (times the scale 2^-14: 1024).
        var format = DfpFormat.SDfp(8, 1);
        using var conv = new QuantizedConv2d("conv", 64, 2, 4, config: QuantizationConfig.Uniform(format));
        using (no_grad())
            conv.weight.fill_(-1f);
        using var x = full(new long[] { 1, 64, 4, 4 }, -1f);
        using var qa = Dfp.Quantize(x, format);
        Assert.All(Longs(qa.Integers), q => Assert.Equal(-128, q));
        Assert.Equal(-7, qa.Exponent);
        using var y = conv.forward(x);
        Assert.All(Values(y), v => Assert.Equal(1024f, v));
    }

    [Theory]
    [InlineData(576)]
    [InlineData(1024)]
    public void Quantised_linear_forward_equals_an_int64_reference(int inFeatures)
    {
        var format = DfpFormat.SDfp(8, 2);
        using var linear = new QuantizedLinear("fc", inFeatures, 7, bias: false, config: QuantizationConfig.Uniform(format));
        using var x = Random(2, 3, inFeatures);
        using var y = linear.forward(x);
        using var qa = Dfp.Quantize(x, format);
        using var qw = Dfp.Quantize(linear.weight, format);
        var a = Longs(qa.Integers);
        var w = Longs(qw.Integers);
        var actual = Values(y);
        var scale = Math.ScaleB(1, qa.Exponent + qw.Exponent);
        for (var n = 0; n < 3; n++)
            for (var o = 0; o < 7; o++)
            {
                long sum = 0;
                for (var i = 0; i < inFeatures; i++)
                    sum += a[n * inFeatures + i] * w[o * inFeatures + i];
                Assert.Equal(sum * scale, (double)actual[n * 7 + o]);
            }
    }

    [Fact]
    public void Quantised_linear_backward_equals_int64_references_for_dgrad_and_wgrad()
    {
        // Linear gradients are plain GEMMs too: dgrad = qG·qW and wgrad = qGᵀ·qA, each exact in FP32 for these K.
        var format = DfpFormat.SDfp(8, 1);
        const int batch = 4, inF = 9, outF = 6;
        using var linear = new QuantizedLinear("fc", inF, outF, bias: false, config: QuantizationConfig.Uniform(format));
        using var x = Random(3, batch, inF).requires_grad_();
        using var g = Random(4, batch, outF);
        using var y = linear.forward(x);
        y.backward([g]);

        using var qa = Dfp.Quantize(x.detach(), format);
        using var qw = Dfp.Quantize(linear.weight.detach(), format);
        using var qg = Dfp.Quantize(g, format);
        var a = Longs(qa.Integers);
        var w = Longs(qw.Integers);
        var e = Longs(qg.Integers);
        var dgrad = Values(x.grad!);
        var wgrad = Values(linear.weight.grad!);
        for (var n = 0; n < batch; n++)
            for (var i = 0; i < inF; i++)
            {
                long sum = 0;
                for (var o = 0; o < outF; o++)
                    sum += e[n * outF + o] * w[o * inF + i];
                Assert.Equal(sum * Math.ScaleB(1, qg.Exponent + qw.Exponent), (double)dgrad[n * inF + i]);
            }
        for (var o = 0; o < outF; o++)
            for (var i = 0; i < inF; i++)
            {
                long sum = 0;
                for (var n = 0; n < batch; n++)
                    sum += e[n * outF + o] * a[n * inF + i];
                Assert.Equal(sum * Math.ScaleB(1, qg.Exponent + qa.Exponent), (double)wgrad[o * inF + i]);
            }
    }

    [Theory]
    [InlineData(1024, 8, 8, true)]
    [InlineData(1025, 8, 8, false)]
    [InlineData(576, 8, 8, true)]
    [InlineData(576, 12, 8, false)] // 576 · 2^18 > 2^24
    [InlineData(64, 12, 8, true)]   // 64 · 2^18 = 2^24
    [InlineData(1, 16, 16, false)]  // a single 16×16-bit product already needs 30 bits
    public void Exactness_bound_is_K_times_two_to_the_bits_minus_two_within_two_to_the_24(long k, int bitsA, int bitsW, bool exact)
    {
        Assert.Equal(exact, Dfp.IsExactFp32Accumulation(k, DfpFormat.Dfp(bitsA), DfpFormat.Dfp(bitsW)));
        Assert.False(Dfp.IsExactFp32Accumulation(k, null, DfpFormat.Dfp(bitsW)));
    }

    [Fact]
    public void Layers_say_whether_their_forward_is_exact()
    {
        var s8 = QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1));
        using var resnetConv = new QuantizedConv2d("a", 64, 64, 3, config: s8);     // K = 576
        using var wideConv = new QuantizedConv2d("b", 128, 128, 3, config: s8);     // K = 1152
        using var fp32Conv = new QuantizedConv2d("c", 16, 16, 3);
        using var fc = new QuantizedLinear("fc", 64, 10, config: s8);
        Assert.True(resnetConv.IsForwardExact);
        Assert.False(wideConv.IsForwardExact);
        Assert.False(fp32Conv.IsForwardExact);
        Assert.True(fc.IsForwardExact);
    }

    private static long[] Conv2dInt64(long[] a, long[] w, int batch, int cin, int h, int wd, int cout, int k, int pad)
    {
        var ho = h + 2 * pad - k + 1;
        var wo = wd + 2 * pad - k + 1;
        var result = new long[batch * cout * ho * wo];
        for (var n = 0; n < batch; n++)
            for (var o = 0; o < cout; o++)
                for (var r = 0; r < ho; r++)
                    for (var c = 0; c < wo; c++)
                    {
                        long sum = 0;
                        for (var i = 0; i < cin; i++)
                            for (var kr = 0; kr < k; kr++)
                                for (var kc = 0; kc < k; kc++)
                                {
                                    var ir = r + kr - pad;
                                    var ic = c + kc - pad;
                                    if (ir < 0 || ir >= h || ic < 0 || ic >= wd)
                                        continue;
                                    sum += a[((n * cin + i) * h + ir) * wd + ic] * w[((o * cin + i) * k + kr) * k + kc];
                                }
                        result[((n * cout + o) * ho + r) * wo + c] = sum;
                    }
        return result;
    }
}
