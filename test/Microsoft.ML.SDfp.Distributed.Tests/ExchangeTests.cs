using Microsoft.ML.SDfp.Distributed.Exchange;

namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>
/// FP32 and S-DFP gradient exchange between two ranks. The helper's vectors are, per rank r = 0, 1:
/// segment 0 = [0.5(r+1), -0.013(r+1), 0.0071], segment 1 = [0, 0], segment 2 = [0.001, 0.002].
/// </summary>
public sealed class ExchangeTests
{
    private static float[] Values(Mpirun.Result run, int rank) =>
        run.Line(rank, "values").Split(',').Select(h => BitConverter.Int32BitsToSingle(Convert.ToInt32(h, 16))).ToArray();

    [Fact]
    public void Fp32_exchange_is_the_float_sum_on_both_ranks()
    {
        var run = Mpirun.Run(2, "exchange", "Fp32", "8");
        run.AssertSucceeded();
        float[] expected = [0.5f + 1.0f, -0.013f + -0.026f, 0.0071f + 0.0071f, 0, 0, 0.002f, 0.004f];
        for (var rank = 0; rank < 2; rank++)
        {
            Assert.Equal(expected, Values(run, rank));
            Assert.Equal("sumbits 32 bytes 28 fp32bytes 28", "sumbits " + run.Line(rank, "sumbits"));
        }
    }

    [Fact]
    public void SDfp8_exchange_agrees_on_the_larger_exponent_and_sums_integers_in_int16()
    {
        // Segment 0: rank 0 alone would pick e = ceil(log2(0.5/127)) = -7, rank 1 e = ceil(log2(1/127)) = -6; MAX gives
        // -6, so the grid is 1/64: q = (32, -1, 0) + (64, -2, 0) = (96, -3, 0), i.e. 1.5, -0.046875, 0 (0.0142 is lost
        // below half a step). Segment 2: e = ceil(log2(0.002/127)) = -15; q = (33, 66) per rank (0.001 * 2^15 = 32.8,
        // 0.002 * 2^15 = 65.5 -> 66), summed (66, 132) * 2^-15.
        var run = Mpirun.Run(2, "exchange", "SDfp", "8");
        run.AssertSucceeded();
        float[] expected = [1.5f, -0.046875f, 0, 0, 0, 66f / 32768, 132f / 32768];
        for (var rank = 0; rank < 2; rank++)
        {
            Assert.Equal(expected, Values(run, rank));
            // 7 values as int16 (8 bits + 1 for two ranks) plus 3 int32 exponents, against 7 floats.
            Assert.Equal("16 bytes 26 fp32bytes 28", run.Line(rank, "sumbits"));
        }
    }

    [Fact]
    public void Seven_bit_integers_of_two_ranks_travel_as_int8()
    {
        var run = Mpirun.Run(2, "exchange", "SDfp", "7");
        run.AssertSucceeded();
        Assert.Equal("8 bytes 19 fp32bytes 28", run.Line(0, "sumbits"));
        Assert.Equal(Values(run, 0), Values(run, 1));
        Assert.Equal(1.5f, Values(run, 0)[0]);
    }

    [Theory]
    [InlineData("Fp32")]
    [InlineData("SDfp")]
    public void A_NaN_on_one_rank_makes_the_sum_non_finite_on_every_rank(string format)
    {
        var run = Mpirun.Run(2, "exchange", format, "8", "nan");
        run.AssertSucceeded();
        for (var rank = 0; rank < 2; rank++)
            Assert.True(float.IsNaN(Values(run, rank)[6]), run.ToString());
    }

    [Theory]
    [InlineData(new float[] { 1f }, 127, -6)]      // 1/127 = 2^-6.99
    [InlineData(new float[] { 127f, -3 }, 127, 0)] // exactly qmax: no overflow at e = 0
    [InlineData(new float[] { -128f }, 127, 1)]    // |x| > qmax needs e = 1
    [InlineData(new float[] { 0f, 0f }, 127, int.MinValue)]
    [InlineData(new float[] { 1f, float.PositiveInfinity }, 127, int.MaxValue)]
    public void The_local_exponent_is_the_smallest_without_overflow(float[] x, int qmax, int expected) =>
        Assert.Equal(expected, GradientExchange.LocalExponent(x, qmax));
}
