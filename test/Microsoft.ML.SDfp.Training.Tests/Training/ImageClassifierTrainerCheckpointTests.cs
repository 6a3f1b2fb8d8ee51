using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using Xunit;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

[Collection(GlobalGeneratorCollection.Name)]
public sealed class ImageClassifierTrainerCheckpointTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sdfp-checkpoint-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
            Directory.Delete(_folder, recursive: true);
    }

    /// <summary>
    /// Stochastic rounding and delayed exponents, so that the rounding streams and the amax histories must be restored
    /// too for the resumed run to match.
    /// </summary>
    private static QuantizationPolicy Policy() => QuantizationPolicy.Body(QuantizationConfig.Uniform(
        DfpFormat.SDfp(8, 1) with { Rounding = RoundingMode.Stochastic, ExponentSource = ExponentSource.Delayed }) with { Seed = 11 });

    private TrainingOptions Options(int epochs = 3) => new()
    {
        Epochs = epochs,
        BatchSize = 32,
        LearningRate = 0.05,
        Seed = 4,
        EarlyStoppingPatience = 5,
        CheckpointDirectory = _folder,
    };

    private static ImageDataset Data() => TrainingFixtures.RandomData(96, seed: 3);

    private static ImageDataset Validation() => TrainingFixtures.RandomData(32, seed: 8);

    /// <summary>Trains with a checkpoint and stops (as a kill would) right after epoch <paramref name="epochs"/> was saved.</summary>
    private void TrainAndStopAfter(int epochs, TrainingOptions options)
    {
        using var data = Data();
        using var validation = Validation();
        using var model = TrainingFixtures.ResNet20(Policy());
        using var cancellation = new CancellationTokenSource();
        var trainer = new ImageClassifierTrainer(model, options);
        trainer.EpochCompleted += m =>
        {
            if (m.Epoch == epochs)
                cancellation.Cancel();
        };
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(data, validation, cancellation.Token));
    }

    [Fact]
    public void A_run_resumed_from_its_checkpoint_ends_bit_identical_to_an_uninterrupted_one()
    {
        using var data = Data();
        using var validation = Validation();
        using var uninterrupted = TrainingFixtures.ResNet20(Policy());
        var expected = new ImageClassifierTrainer(uninterrupted, Options() with { CheckpointDirectory = null }).Fit(data, validation);

        TrainAndStopAfter(2, Options());
        // Another initialisation: every weight must come from the checkpoint.
        using var resumed = TrainingFixtures.ResNet20(Policy(), initSeed: 7);
        var trainer = new ImageClassifierTrainer(resumed, Options());
        var epochsRun = new List<int>();
        trainer.EpochCompleted += m => epochsRun.Add(m.Epoch);
        var result = trainer.Fit(data, validation);

        Assert.Equal([3], epochsRun);
        Assert.Equal(3, result.Epochs.Count);
        Assert.Equal(expected.Epochs.Select(e => (e.TrainLoss, e.ValidationAccuracy)), result.Epochs.Select(e => (e.TrainLoss, e.ValidationAccuracy)));
        Assert.Equal(expected.BestEpoch, result.BestEpoch);
        var want = TrainingFixtures.Weights(uninterrupted);
        var got = TrainingFixtures.Weights(resumed);
        Assert.Equal(want.Keys, got.Keys);
        Assert.All(want, kv => Assert.Equal(kv.Value, got[kv.Key]));
    }

    [Fact]
    public void A_finished_run_resumed_returns_its_weights_without_training()
    {
        using var data = Data();
        using var validation = Validation();
        using var first = TrainingFixtures.ResNet20(Policy());
        new ImageClassifierTrainer(first, Options(epochs: 1)).Fit(data, validation);

        using var again = TrainingFixtures.ResNet20(Policy(), initSeed: 7);
        var trainer = new ImageClassifierTrainer(again, Options(epochs: 1));
        var steps = 0;
        trainer.StepCompleted += _ => steps++;
        var result = trainer.Fit(data, validation);

        Assert.Equal(0, steps);
        Assert.Single(result.Epochs);
        var want = TrainingFixtures.Weights(first);
        Assert.All(TrainingFixtures.Weights(again), kv => Assert.Equal(want[kv.Key], kv.Value));
    }

    [Fact]
    public void A_checkpoint_of_another_run_is_refused_naming_the_file_and_the_difference()
    {
        TrainAndStopAfter(1, Options());
        using var data = Data();
        using var validation = Validation();
        using var model = TrainingFixtures.ResNet20(Policy());

        var error = Assert.Throws<ArgumentException>(() =>
            new ImageClassifierTrainer(model, Options() with { LearningRate = 0.01 }).Fit(data, validation));

        Assert.Contains(Path.Combine(_folder, TrainingCheckpoint.FileName), error.Message);
        Assert.Contains("LearningRate = 0.01", error.Message);
    }

    [Fact]
    public void A_damaged_checkpoint_is_refused_naming_the_file()
    {
        TrainAndStopAfter(1, Options());
        var path = Path.Combine(_folder, TrainingCheckpoint.FileName);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        using var data = Data();
        using var validation = Validation();
        using var model = TrainingFixtures.ResNet20(Policy());

        var error = Assert.Throws<InvalidDataException>(() => new ImageClassifierTrainer(model, Options()).Fit(data, validation));

        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void A_write_that_fails_midway_leaves_the_previous_checkpoint_whole_and_no_temporary_file()
    {
        TrainAndStopAfter(1, Options());
        var path = Path.Combine(_folder, TrainingCheckpoint.FileName);
        var before = File.ReadAllBytes(path);

        Assert.Throws<IOException>(() => TrainingCheckpoint.Save(_folder, "another run", writer =>
        {
            writer.Write(new byte[1 << 20]);
            throw new IOException("disk full");
        }));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_folder));
    }
}
