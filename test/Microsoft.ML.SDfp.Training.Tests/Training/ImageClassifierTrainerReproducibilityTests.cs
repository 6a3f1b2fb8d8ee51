using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Runtime;
using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

[Collection(GlobalGeneratorCollection.Name)]
public sealed class ImageClassifierTrainerReproducibilityTests
{
    public ImageClassifierTrainerReproducibilityTests() => Microsoft.ML.SDfp.Runtime.TorchSharpRuntime.EnsureLoaded();

    private static readonly TrainingOptions Options = new() { Epochs = 2, BatchSize = 32, LearningRate = 0.05, Seed = 21 };

    private static Dictionary<string, float[]> TrainOnce(long trainerSeed, long roundingSeed)
    {
        using var data = TrainingFixtures.RandomData(96, seed: 4);
        using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body(roundingSeed, RoundingMode.Stochastic), initSeed: 7);
        new ImageClassifierTrainer(model, Options with { Seed = trainerSeed }).Fit(data);
        return TrainingFixtures.Weights(model);
    }

    [Fact]
    public void Same_seeds_give_bit_identical_weights_and_buffers()
    {
        var first = TrainOnce(trainerSeed: 21, roundingSeed: 5);
        var second = TrainOnce(trainerSeed: 21, roundingSeed: 5);

        Assert.Equal(first.Keys.OrderBy(k => k), second.Keys.OrderBy(k => k));
        foreach (var (name, values) in first)
            Assert.True(values.AsSpan().SequenceEqual(second[name]), $"{name} differs between two runs with the same seeds");
    }

    [Fact]
    public void Another_trainer_seed_gives_different_weights()
    {
        var first = TrainOnce(trainerSeed: 21, roundingSeed: 5);
        var other = TrainOnce(trainerSeed: 22, roundingSeed: 5);

        Assert.Contains(first, kv => !kv.Value.AsSpan().SequenceEqual(other[kv.Key]));
    }

    [Fact]
    public void Another_stochastic_rounding_seed_gives_different_weights()
    {
        var first = TrainOnce(trainerSeed: 21, roundingSeed: 5);
        var other = TrainOnce(trainerSeed: 21, roundingSeed: 6);

        Assert.Contains(first, kv => !kv.Value.AsSpan().SequenceEqual(other[kv.Key]));
    }
}
