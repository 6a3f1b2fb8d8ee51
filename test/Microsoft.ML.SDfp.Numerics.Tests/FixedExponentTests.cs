using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp;

namespace Microsoft.ML.SDfp.Numerics.Tests;

/// <summary>
/// <see cref="Dfp.FakeQuantize(torch.Tensor, DfpFormat, int, torch.Generator?)"/>: quantising on the grid of one given
/// exponent (how scoring quantises activations with a calibrated exponent per layer) is exactly the layer's grid.
/// </summary>
public sealed class FixedExponentTests : TorchTests
{
    [Theory]
    [InlineData(8, 0)]
    [InlineData(8, 1)]
    [InlineData(8, 3)]
    [InlineData(6, -1)]
    public void Quantising_with_the_exponent_the_numerics_layer_would_pick_gives_its_very_values(int bits, int shift)
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(42);
        var x = torch.randn(new long[] { 4, 8, 5, 5 }, generator: generator) * 3f;
        DfpFormat format = DfpFormat.SDfp(bits, shift);
        int exponent = Dfp.Exponent(x.abs().max().item<float>(), format, shift);

        Assert.Equal(Dfp.FakeQuantize(x, format).data<float>().ToArray(), Dfp.FakeQuantize(x, format, exponent).data<float>().ToArray());
    }

    [Fact]
    public void A_static_exponent_makes_each_row_independent_of_the_rest_of_its_batch()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(7);
        var batch = torch.randn(new long[] { 3, 4, 6, 6 }, generator: generator) * torch.tensor(new float[] { 0.1f, 1f, 50f }).reshape(3, 1, 1, 1);
        DfpFormat format = DfpFormat.SDfp(8, 1);
        var together = Dfp.FakeQuantize(batch, format, -3).data<float>().ToArray();
        var alone = Enumerable.Range(0, 3).SelectMany(i => Dfp.FakeQuantize(batch[i], format, -3).data<float>().ToArray()).ToArray();
        Assert.Equal(alone, together);
    }

    [Fact]
    public void Values_beyond_the_grid_saturate_and_the_rest_round_half_to_even()
    {
        using var scope = torch.NewDisposeScope();
        // Exponent -2: the grid step is 0.25 and the 8-bit range [-128, 127] · 0.25 = [-32, 31.75].
        var x = torch.tensor(new float[] { 0.125f, 0.375f, -0.125f, 1.1f, 100f, -100f, 31.8f });
        var q = Dfp.FakeQuantize(x, DfpFormat.Dfp(8), -2).data<float>().ToArray();
        Assert.Equal(new float[] { 0f, 0.5f, 0f, 1f, 31.75f, -32f, 31.75f }, q);
    }

    [Theory]
    [InlineData(Dfp.MinExponent - 1)]
    [InlineData(Dfp.MaxExponent + 1)]
    public void An_exponent_outside_the_fp32_range_is_refused_naming_it(int exponent)
    {
        using var x = torch.ones(3);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Dfp.FakeQuantize(x, DfpFormat.Dfp(8), exponent));
        Assert.Contains(exponent.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }

    [Fact]
    public void Dfp_tensors_round_trip_through_arrays()
    {
        using var scope = torch.NewDisposeScope();
        var format = DfpFormat.SDfp(8, 1);
        using var q = Dfp.Quantize(Random(3, 4, 5), format);
        sbyte[] integers = q.ToArray<sbyte>();
        using var back = DfpTensor.FromArray(integers, q.Shape, q.Exponent, format);
        Assert.Equal(new long[] { 4, 5 }, back.Shape);
        Assert.Equal(integers, back.ToArray<sbyte>());
        Assert.Equal(Values(q.ToFloat()), Values(back.ToFloat()));

        var wide = DfpFormat.Dfp(12);
        using var q16 = Dfp.Quantize(Random(4, 6), wide);
        using var back16 = DfpTensor.FromArray(q16.ToArray<short>(), q16.Shape, q16.Exponent, wide);
        Assert.Equal(Values(q16.ToFloat()), Values(back16.ToFloat()));
    }

    [Fact]
    public void A_dfp_tensor_refuses_an_array_its_shape_or_format_cannot_hold()
    {
        var e = Assert.Throws<ArgumentException>(() => DfpTensor.FromArray(new sbyte[5], new long[] { 2, 3 }, 0, DfpFormat.Dfp(8)));
        Assert.Contains("6 elements", e.Message);
        Assert.Throws<ArgumentException>(() => DfpTensor.FromArray(new sbyte[4], new long[] { 4 }, 0, DfpFormat.Dfp(12)));
    }
}
