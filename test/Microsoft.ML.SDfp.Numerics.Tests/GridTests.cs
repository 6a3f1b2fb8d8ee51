using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class GridTests : TorchTests
{
    public static TheoryData<int, int> BitsAndShifts()
    {
        var data = new TheoryData<int, int>();
        foreach (var bits in new[] { 2, 3, 4, 8, 12, 16 })
            foreach (var shift in new[] { -2, 0, 1, 3 })
                data.Add(bits, shift);
        return data;
    }

    [Theory]
    [MemberData(nameof(BitsAndShifts))]
    public void Every_quantised_value_is_an_integer_in_range_times_two_to_the_exponent(int bits, int shift)
    {
        var format = DfpFormat.SDfp(bits, shift);
        using var x = Random(bits * 100 + shift + 10, 3, 5, 7);
        using var q = Dfp.Quantize(x, format);
        using var fake = Dfp.FakeQuantize(x, format);

        var amax = Values(x).Max(Math.Abs);
        Assert.Equal(Dfp.Exponent(amax, format, shift), q.Exponent);
        Assert.Equal(Dfp.IntegerType(format), q.Integers.dtype);
        var integers = Longs(q.Integers);
        Assert.All(integers, v => Assert.InRange(v, format.QMin, format.QMax));
        var grid = Values(fake);
        for (var i = 0; i < grid.Length; i++)
            Assert.Equal((double)integers[i] * Math.ScaleB(1, q.Exponent), grid[i]);
        using var back = q.ToFloat();
        AssertExactlyEqual(fake, back);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(16)]
    public void Dfp_with_zero_shift_never_saturates(int bits)
    {
        var format = DfpFormat.Dfp(bits);
        var telemetry = new Telemetry.QuantizationTelemetry();
        var quantizer = new TensorQuantizer("l", TensorRole.Activation, format, telemetry);
        for (var seed = 0; seed < 20; seed++)
        {
            using var x = Random(seed, 257);
            using var q = quantizer.Quantize(x);
            var e = q.Exponent;
            // Nothing lies beyond the representable range, so the clamp never moves a value.
            Assert.All(Values(x), v => Assert.InRange(v / Math.ScaleB(1, e), format.QMin, format.QMax));
            Assert.Equal(0, telemetry.Records[^1].SaturatedFraction);
        }
    }

    [Theory]
    [InlineData(8, 1)]
    [InlineData(8, 3)]
    [InlineData(4, 2)]
    public void Sdfp_saturates_exactly_the_values_beyond_qmax_times_two_to_the_shifted_exponent(int bits, int shift)
    {
        var format = DfpFormat.SDfp(bits, shift);
        var telemetry = new Telemetry.QuantizationTelemetry();
        var quantizer = new TensorQuantizer("l", TensorRole.Weight, format, telemetry);
        using var x = Random(42 + shift, 4001);
        using var q = quantizer.Quantize(x);
        var top = format.QMax * Math.ScaleB(1, q.Exponent);
        var bottom = format.QMin * Math.ScaleB(1, q.Exponent);
        var values = Values(x);
        var integers = Longs(q.Integers);

        var beyond = 0;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] > top || values[i] < bottom)
            {
                beyond++;
                Assert.Equal(values[i] > 0 ? format.QMax : format.QMin, integers[i]);
            }
            else
            {
                Assert.Equal(Math.Round(values[i] / Math.ScaleB(1, q.Exponent), MidpointRounding.ToEven), integers[i]);
            }
        }
        Assert.True(beyond > 0, "a positive shift must saturate the largest values");
        Assert.Equal((double)beyond / values.Length, telemetry.Records[^1].SaturatedFraction, 12);
    }

    [Fact]
    public void All_zero_tensor_is_exact()
    {
        var telemetry = new Telemetry.QuantizationTelemetry();
        var quantizer = new TensorQuantizer("zeros", TensorRole.Error, DfpFormat.SDfp(8, 2), telemetry);
        using var x = zeros(3, 4);
        using var y = quantizer.FakeQuantize(x);
        AssertExactlyEqual(x, y);
        Assert.Equal(-2, quantizer.LastExponent);
        var r = telemetry.Records[^1];
        Assert.Equal(0, r.Amax);
        Assert.Equal(double.PositiveInfinity, r.SqnrDb);
        Assert.Equal(0, r.SaturatedFraction);
        Assert.Equal(0, r.FlushedToZeroFraction);
    }

    [Fact]
    public void Fused_kernel_matches_the_torch_op_reference_bit_for_bit_including_statistics()
    {
        foreach (var (bits, shift) in new[] { (8, 0), (8, 2), (4, 1), (16, -1), (2, 0) })
        {
            var format = DfpFormat.SDfp(bits, shift);
            // 70,003 elements: several parallel chunks and a scalar tail.
            using var x = Random(bits + shift, 70_003);
            x[5] = tensor(0f);
            x[6] = tensor(1e-9f);
            var exponent = Dfp.Exponent(Values(x).Max(Math.Abs), format, shift);
            FusedQuantization.ThreadOverride = 3;
            using var fused = FusedQuantization.Quantize(x, exponent, format, 0, fake: true, collect: true, out var fs);
            FusedQuantization.ThreadOverride = 0;
            using var reference = TorchQuantization.FakeQuantize(x, exponent, format, null, collect: true, out var rs);
            AssertExactlyEqual(reference, fused);
            Assert.Equal(rs.Count, fs.Count);
            Assert.Equal(rs.NonZero, fs.NonZero);
            Assert.Equal(rs.Saturated, fs.Saturated);
            Assert.Equal(rs.Flushed, fs.Flushed);
            // The fused kernel sums squares in FP32 blocks before double: 1e-5 relative is ~4e-5 dB of SQNR.
            Assert.Equal(rs.SignalEnergy, fs.SignalEnergy, rs.SignalEnergy * 1e-5);
            Assert.Equal(rs.ErrorEnergy, fs.ErrorEnergy, rs.ErrorEnergy * 1e-5);
            Assert.Equal(TorchQuantization.Amax(x), FusedQuantization.Amax(x));
        }
    }

    [Fact]
    public void Stochastic_rounding_does_not_depend_on_how_the_work_is_split_over_threads()
    {
        var format = DfpFormat.SDfp(8, 1) with { Rounding = RoundingMode.Stochastic };
        using var x = Random(8, 100_001);
        var results = new List<float[]>();
        foreach (var threads in new[] { 1, 2, 3 })
        {
            FusedQuantization.ThreadOverride = threads;
            using var q = FusedQuantization.Quantize(x, -3, format, seed: 99, fake: true, collect: false, out _);
            results.Add(Values(q));
        }
        FusedQuantization.ThreadOverride = 0;
        Assert.Equal(results[0], results[1]);
        Assert.Equal(results[0], results[2]);
    }

    [Fact]
    public void Non_contiguous_and_double_tensors_take_the_reference_path_with_the_same_result()
    {
        var format = DfpFormat.SDfp(8, 1);
        using var x = Random(3, 40, 30);
        using var t = x.t();
        Assert.False(t.is_contiguous());
        using var fromView = Dfp.FakeQuantize(t, format);
        using var contiguous = t.contiguous();
        using var fromCopy = Dfp.FakeQuantize(contiguous, format);
        AssertExactlyEqual(fromCopy, fromView);

        using var x64 = x.to_type(ScalarType.Float64);
        using var q64 = Dfp.FakeQuantize(x64, format);
        using var q32 = Dfp.FakeQuantize(x, format);
        Assert.Equal(ScalarType.Float64, q64.dtype);
        AssertExactlyEqual(q32, q64.to_type(ScalarType.Float32));
    }

    [Theory]
    [InlineData(1e-40f)]  // subnormal: the natural exponent (-139) has no FP32 scale 2^139
    [InlineData(3e38f)]   // near FP32's maximum
    public void Extreme_magnitudes_quantise_without_overflow_or_nan(float amax)
    {
        var format = DfpFormat.SDfp(8, -2);
        using var x = tensor(new[] { amax, -amax / 2, 0f });
        using var q = Dfp.FakeQuantize(x, format);
        var values = Values(q);
        Assert.All(values, v => Assert.True(float.IsFinite(v)));
        var exponent = Dfp.Exponent(amax, format, -2);
        Assert.InRange(exponent, Dfp.MinExponent, Dfp.MaxExponent);
        // Nothing saturates: the clamp on the exponent only ever coarsens the grid.
        Assert.True(amax <= format.QMax * Math.ScaleB(1, exponent));
    }

    [Fact]
    public void Integer_tensors_are_rejected_with_the_parameter_named()
    {
        using var x = ones(3, dtype: ScalarType.Int32);
        var e = Assert.Throws<ArgumentException>(() => Dfp.FakeQuantize(x, DfpFormat.Dfp(8)));
        Assert.Equal("x", e.ParamName);
        Assert.Contains("Int32", e.Message);
    }
}
