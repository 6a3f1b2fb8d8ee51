using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Scoring;
using TorchSharp;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Scoring quantises activations with one calibrated exponent per layer, on exactly the numerics layer's grid.</summary>
public sealed class StaticExponentQuantizationTests
{
    public StaticExponentQuantizationTests() => TorchSharpRuntime.EnsureLoaded();

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

        Assert.Equal(Dfp.FakeQuantize(x, format).data<float>().ToArray(), SDfpNetwork.QuantizeWithExponent(x, format, exponent).data<float>().ToArray());
    }

    [Fact]
    public void A_static_exponent_makes_each_row_independent_of_the_rest_of_its_batch()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(7);
        var batch = torch.randn(new long[] { 3, 4, 6, 6 }, generator: generator) * torch.tensor(new float[] { 0.1f, 1f, 50f }).reshape(3, 1, 1, 1);
        DfpFormat format = DfpFormat.SDfp(8, 1);
        var together = SDfpNetwork.QuantizeWithExponent(batch, format, -3).data<float>().ToArray();
        var alone = Enumerable.Range(0, 3).SelectMany(i => SDfpNetwork.QuantizeWithExponent(batch[i], format, -3).data<float>().ToArray()).ToArray();
        Assert.Equal(alone, together);
    }
}
