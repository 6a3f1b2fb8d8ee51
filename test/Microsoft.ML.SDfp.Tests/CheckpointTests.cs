using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Trainers;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Options.CheckpointDirectory: an interrupted Fit goes on where it stopped and ends with the same model.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class CheckpointTests(TrainedModelFixture fixture) : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sdfp-stage-checkpoint-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
            Directory.Delete(_folder, recursive: true);
    }

    private float[][] TrainAndScore(string? checkpoint, CancellationToken cancellation = default, Action? afterFirstEpoch = null, List<int>? epochs = null)
    {
        var ml = new MLContext(seed: 1);
        var options = TrainedModelFixture.SmallOptions("Image");
        options.Epochs = 2;
        options.ValidationSetFraction = 0;
        options.CheckpointDirectory = checkpoint;
        options.CancellationToken = cancellation;
        options.MetricsCallback = m =>
        {
            epochs?.Add(m.Epoch);
            if (m.Epoch == 1)
                afterFirstEpoch?.Invoke();
        };
        var rows = FashionMnistFolders.List(fixture.TrainFolder).Where((_, i) => i % 10 == 0).Take(64).ToList();
        IDataView data = ml.Data.LoadFromEnumerable(rows);
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(options)).Fit(data);
        return model.Transform(data).GetColumn<float[]>("Score").ToArray();
    }

    [Fact]
    public void An_interrupted_fit_resumed_from_its_checkpoint_scores_like_an_uninterrupted_one()
    {
        var expected = TrainAndScore(checkpoint: null);

        using var cancellation = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => TrainAndScore(_folder, cancellation.Token, cancellation.Cancel));
        Assert.Single(Directory.GetFiles(_folder));
        var epochsRun = new List<int>();
        var resumed = TrainAndScore(_folder, epochs: epochsRun);

        Assert.Equal([2], epochsRun);
        Assert.Equal(expected, resumed);
    }
}
