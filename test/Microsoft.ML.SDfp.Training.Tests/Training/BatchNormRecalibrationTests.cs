using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

[Collection(GlobalGeneratorCollection.Name)]
public sealed class BatchNormRecalibrationTests
{
    private static TrainingOptions Options => new() { Epochs = 2, BatchSize = 32, LearningRate = 0.05, Seed = 4 };

    private static T Module<T>(nn.Module model, string name) where T : nn.Module =>
        (T)model.named_modules().Single(m => m.name == name).module;

    [Fact]
    public void Running_statistics_become_the_plain_mean_over_the_batches()
    {
        using var data = TrainingFixtures.RandomData(64, seed: 5);
        using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());

        BatchNormRecalibration.Run(model, data, batches: 2, batchSize: 32, seed: 1, epoch: 1);

        // The stem's batch norm sees the stem conv's output; two equal batches covering all 64 images average to the whole.
        using var noGrad = no_grad();
        var stem = Module<nn.Module<Tensor, Tensor>>(model, "conv1").call(data.Images);
        var bn = Module<BatchNorm2d>(model, "bn1");
        var mean = stem.mean([0, 2, 3]);
        Assert.True(bn.running_mean!.allclose(mean, rtol: 1e-4, atol: 1e-5), "running mean = mean over both batches");
        Assert.Equal(0.1, bn.momentum!.Value, 12);
    }

    [Fact]
    public void Recalibrating_every_epoch_changes_only_the_running_statistics()
    {
        using var data = TrainingFixtures.RandomData(96, seed: 3);
        using var plain = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());
        using var recalibrated = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());

        new ImageClassifierTrainer(plain, Options).Fit(data);
        new ImageClassifierTrainer(recalibrated, Options with { BatchNormRecalibrationBatches = 2 }).Fit(data);

        var parameters = plain.named_parameters().Select(p => p.name).ToHashSet();
        var want = TrainingFixtures.Weights(plain);
        var got = TrainingFixtures.Weights(recalibrated);
        Assert.All(parameters, name => Assert.Equal(want[name], got[name]));
        Assert.NotEqual(want["bn1.running_mean"], got["bn1.running_mean"]);
    }
}
