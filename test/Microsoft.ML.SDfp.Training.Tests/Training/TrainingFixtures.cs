using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

/// <summary>Small helpers shared by the trainer tests: seeded models and tiny data sets.</summary>
internal static class TrainingFixtures
{
    static TrainingFixtures() => TorchSharpRuntime.EnsureLoaded();

    /// <summary>S-DFP8 with a shift of 1 on W, A and G, as a representative quantised body.</summary>
    public static QuantizationPolicy SDfp8Body(long seed = 0, RoundingMode rounding = RoundingMode.NearestEven) =>
        QuantizationPolicy.Body(QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1) with { Rounding = rounding }) with { Seed = seed });

    /// <summary>CIFAR ResNet-20 for 1-channel 28×28 images, initialised from <paramref name="initSeed"/>.</summary>
    public static ResNetModel ResNet20(QuantizationPolicy policy, long initSeed = 1)
    {
        TorchSharpRuntime.EnsureLoaded();
        torch.manual_seed(initSeed);
        return ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet20,
            InputChannels = 1,
            NumClasses = 10,
            Quantization = policy,
        });
    }

    /// <summary>Random images [n, 1, 8, 8] with random labels: enough to exercise the loop, nothing to learn.</summary>
    public static ImageDataset RandomData(int n, long seed, int size = 8)
    {
        TorchSharpRuntime.EnsureLoaded();
        using var generator = new Generator((ulong)seed);
        using var scope = NewDisposeScope();
        var images = randn(new long[] { n, 1, size, size }, generator: generator);
        var labels = randint(0, 10, new long[] { n }, dtype: ScalarType.Int64, generator: generator);
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10);
    }

    /// <summary>All parameters and buffers as CPU copies keyed by name.</summary>
    public static Dictionary<string, float[]> Weights(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float32).data<float>().ToArray());
}
