using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class ExponentTests
{
    [Theory]
    // qmax = 127: amax = 127 fits at e = 0; one ulp more needs e = 1.
    [InlineData(127.0, 0)]
    [InlineData(127.00001, 1)]
    [InlineData(254.0, 1)]
    [InlineData(1.0, -6)]     // 127 * 2^-6 = 1.98 >= 1 > 127 * 2^-7
    [InlineData(0.9921875, -7)] // exactly 127 * 2^-7
    [InlineData(1e-30, -106)]
    public void Dfp_exponent_is_the_smallest_at_which_amax_does_not_overflow(double amax, int expected)
    {
        var format = DfpFormat.Dfp(8);
        var e = Dfp.Exponent(amax, format, 0);
        Assert.Equal(expected, e);
        Assert.True(amax <= format.QMax * Math.ScaleB(1, e));
        Assert.True(amax > format.QMax * Math.ScaleB(1, e - 1));
    }

    [Fact]
    public void Exact_powers_of_two_are_not_pushed_up_by_floating_point_fuzz()
    {
        // With qmax = 1 (2 bits), amax = 2^k needs exactly e = k; log2 via floating point can land on k + 1e-16.
        var format = DfpFormat.Dfp(2);
        for (var k = -60; k <= 60; k++)
            Assert.Equal(k, Dfp.Exponent(Math.ScaleB(1, k), format, 0));
    }

    [Fact]
    public void Shift_lowers_the_exponent()
    {
        var format = DfpFormat.Dfp(8);
        Assert.Equal(-2, Dfp.Exponent(100, format, 2));
        Assert.Equal(3, Dfp.Exponent(100, format, -3));
    }

    [Fact]
    public void All_zero_tensor_has_exponent_minus_shift()
    {
        Assert.Equal(0, Dfp.Exponent(0, DfpFormat.Dfp(8), 0));
        Assert.Equal(-2, Dfp.Exponent(0, DfpFormat.Dfp(8), 2));
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(-1.0)]
    public void Non_finite_or_negative_amax_is_rejected(double amax)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Dfp.Exponent(amax, DfpFormat.Dfp(8), 0));
        Assert.Equal("amax", e.ParamName);
    }
}
