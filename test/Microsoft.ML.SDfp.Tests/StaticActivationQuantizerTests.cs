using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Scoring;
using TorchSharp;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>The scoring hooks' quantiser gives the grid of <c>Dfp.FakeQuantize(x, format, exponent)</c> bit for bit.</summary>
public sealed class StaticActivationQuantizerTests
{
    [Theory]
    [InlineData(8, -3)]
    [InlineData(8, 4)]
    [InlineData(4, -126)]
    [InlineData(16, 20)]
    public void Matches_Dfp_FakeQuantize_bit_for_bit_including_ties_and_saturation(int bits, int exponent)
    {
        TorchSharpRuntime.EnsureLoaded();
        using var scope = torch.NewDisposeScope();
        var format = DfpFormat.Dfp(bits);
        float step = MathF.ScaleB(1f, exponent);
        // Ties (k + 0.5 steps, both parities), values past both ends of the grid, zero, and random values.
        float[] special = [0.5f * step, 1.5f * step, -2.5f * step, 1e30f, -1e30f, 0f, -0f, step * (float)format.QMax * 3];
        var random = new Random(1);
        float[] values = [.. special, .. Enumerable.Range(0, 4096).Select(_ => (float)((random.NextDouble() - 0.5) * 4 * step * format.QMax))];
        using var x = torch.tensor(values);
        using var quantizer = new StaticActivationQuantizer(format, exponent);
        float[] expected = Dfp.FakeQuantize(x, format, exponent).data<float>().ToArray();
        float[] actual = quantizer.Quantize(x).data<float>().ToArray();
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
    }
}
