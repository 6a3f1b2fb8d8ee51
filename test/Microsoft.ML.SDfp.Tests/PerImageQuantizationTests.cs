using Microsoft.ML.SDfp.MLNet;
using Microsoft.ML.SDfp.Numerics;
using Microsoft.ML.SDfp.Numerics.Runtime;
using TorchSharp;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Scoring quantises activations per image; the vectorised path must equal the numerics layer image by image.</summary>
public sealed class PerImageQuantizationTests
{
    public PerImageQuantizationTests() => TorchSharpRuntime.EnsureLoaded();

    [Theory]
    [InlineData(8, 0)]
    [InlineData(8, 1)]
    [InlineData(8, 3)]
    [InlineData(6, -1)]
    public void Per_image_quantisation_of_a_batch_equals_quantising_each_image_alone(int bits, int shift)
    {
        using var scope = torch.NewDisposeScope();
        var generator = new torch.Generator(42);
        // Images with very different ranges, so each gets a different exponent.
        var batch = torch.randn(new long[] { 6, 4, 5, 5 }, generator: generator) * torch.tensor(new float[] { 0.01f, 0.5f, 1f, 3f, 40f, 1000f }).reshape(6, 1, 1, 1);
        DfpFormat format = DfpFormat.SDfp(bits, shift);

        var together = SDfpNetwork.QuantizePerImage(batch, format, "test").data<float>().ToArray();
        var alone = Enumerable.Range(0, 6).SelectMany(i => Dfp.FakeQuantize(batch[i], format).data<float>().ToArray()).ToArray();

        Assert.Equal(alone, together);
    }
}
