using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Models;
using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

public sealed class ImageClassifierTrainerEarlyStoppingTests
{
    public ImageClassifierTrainerEarlyStoppingTests() => Microsoft.ML.SDfp.Runtime.TorchSharpRuntime.EnsureLoaded();

    [Fact]
    public void Early_stopping_stops_after_patience_epochs_without_improvement_and_restores_the_best_weights()
    {
        // Random labels: validation loss cannot improve for long, so patience 1 stops well before 12 epochs.
        using var train = TrainingFixtures.RandomData(64, seed: 1);
        using var validation = TrainingFixtures.RandomData(64, seed: 2);
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);
        var trainer = new ImageClassifierTrainer(model, new TrainingOptions
        {
            Epochs = 12,
            BatchSize = 32,
            LearningRate = 0.1,
            EarlyStoppingPatience = 1,
            EarlyStoppingMetric = EarlyStoppingMetric.ValidationLoss,
            Seed = 5,
        });

        var result = trainer.Fit(train, validation);

        Assert.True(result.StoppedEarly);
        Assert.True(result.Epochs.Count < 12);
        var losses = result.Epochs.Select(e => e.ValidationLoss!.Value).ToList();
        Assert.Equal(losses.IndexOf(losses.Min()) + 1, result.BestEpoch);
        Assert.True(losses[^1] >= losses[result.BestEpoch - 1], "the last epoch did not improve, which is why training stopped");
        Assert.True(result.RestoredBestWeights);
        var (loss, accuracy) = ImageClassifierTrainer.Evaluate(model, validation);
        Assert.Equal(result.Epochs[result.BestEpoch - 1].ValidationLoss!.Value, loss, 5);
        Assert.Equal(result.Epochs[result.BestEpoch - 1].ValidationAccuracy!.Value, accuracy, 12);
    }

    [Fact]
    public void Early_stopping_without_a_validation_set_is_rejected()
    {
        using var train = TrainingFixtures.RandomData(16, seed: 1);
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);
        var trainer = new ImageClassifierTrainer(model, new TrainingOptions { EarlyStoppingPatience = 2 });

        var error = Assert.Throws<ArgumentException>(() => trainer.Fit(train));
        Assert.Contains("EarlyStoppingPatience", error.Message);
    }
}
