using System.Diagnostics;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using Xunit;
using Xunit.Abstractions;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

public sealed class ImageClassifierTrainerLearningTests
{
    private readonly ITestOutputHelper _output;

    public ImageClassifierTrainerLearningTests(ITestOutputHelper output)
    {
        Microsoft.ML.SDfp.Runtime.TorchSharpRuntime.EnsureLoaded();
        _output = output;
    }

    [Fact]
    public void SDfp8_resnet20_learns_fashion_mnist_well_above_chance_in_two_short_epochs()
    {
        var load = Stopwatch.StartNew();
        using var train = FashionMnist.LoadTrain(limit: 2000);
        using var heldOut = FashionMnist.LoadTest(limit: 500);
        using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());
        model.Telemetry = new QuantizationTelemetry { SampleEvery = 8 };
        var trainer = new ImageClassifierTrainer(model, new TrainingOptions
        {
            Epochs = 2,
            BatchSize = 64,
            LearningRate = 0.05,
            Schedule = LearningRateSchedule.Cosine,
            CropPaddingValue = -FashionMnist.Mean / FashionMnist.Std,
            Seed = 3,
        });
        _output.WriteLine($"load+create {load.Elapsed.TotalSeconds:F1} s");
        var steps = new List<StepProgress>();
        trainer.StepCompleted += steps.Add;
        var clock = Stopwatch.StartNew();

        var result = trainer.Fit(train, heldOut);

        clock.Stop();
        var (loss, accuracy) = ImageClassifierTrainer.Evaluate(model, heldOut);
        foreach (var e in result.Epochs)
            _output.WriteLine($"epoch {e.Epoch}: train {e.TrainingTime.TotalSeconds:F1} s, elapsed {e.Elapsed.TotalSeconds:F1} s, val {e.ValidationAccuracy:P1}");
        _output.WriteLine($"accuracy {accuracy:P1}, loss {loss:F3}, {clock.Elapsed.TotalSeconds:F1} s, {result.Epochs[^1].ImagesPerSecond:F0} img/s");
        Assert.True(accuracy > 0.5, $"held-out accuracy {accuracy:P1} should be well above chance (10%)");
        Assert.Equal(accuracy, result.Epochs[^1].ValidationAccuracy!.Value, 12);   // the epoch's validation is the same eval-mode pass
        Assert.True(result.Epochs[1].TrainLoss < result.Epochs[0].TrainLoss, "training loss should fall from epoch 1 to 2");
        Assert.Equal(2 * 32, steps.Count);                                           // 2000 / 64 = 31 full batches + one of 16
        Assert.Equal(TimeSpan.Zero, steps[^1].Eta);
        Assert.Contains(result.Epochs[^1].Telemetry, s => s.Layer == "layer1.0.conv1" && s.Role == Numerics.Formats.TensorRole.Error);
        Assert.True(result.Epochs[^1].ResidentBytes > 0);
    }
}
