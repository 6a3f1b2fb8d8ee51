using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Distributed.Exchange;
using Microsoft.ML.SDfp.Distributed.Mpi;
using Microsoft.ML.SDfp.Training;
using Microsoft.ML.SDfp.Trainers;

namespace Microsoft.ML.SDfp.Distributed.Tests.RankHelper;

/// <summary>
/// Trains the ML.NET stage on 64 synthetic 8×8 single-channel images of 4 classes (float vectors), distributed when
/// started by mpirun. Prints how many trainer log lines this rank's MLContext received and a hash of the scores of all
/// 64 rows; rank 0 saves the model as out/model.zip.
/// </summary>
internal static class StageTraining
{
    public static int Run(string[] args)
    {
        var settings = args.Select(a => a.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        var distributed = MpiCommunicator.IsLaunchedByMpirun;
        var rank = distributed ? MpiCommunicator.World.Rank : 0;
        var ml = new MLContext(seed: 1);
        var logLines = 0;
        ml.Log += (_, e) =>
        {
            if (e.Source.StartsWith("SDfpImageClassificationTrainer", StringComparison.Ordinal) && e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info)
                Interlocked.Increment(ref logLines);
        };

        var random = new Random(1234);
        var rows = Enumerable.Range(0, 64).Select(i => new Row
        {
            Label = $"c{i % 4}",
            Pixels = Enumerable.Range(0, 64).Select(p => (float)(((p * (i % 4 + 1)) % 7) / 7.0 + 0.3 * random.NextDouble())).ToArray(),
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = new SDfpImageClassificationTrainer.Options
        {
            LabelColumnName = "Label",
            FeatureColumnName = "Pixels",
            FeatureVectorShape = (1, 8, 8),
            ImageWidth = 8,
            ImageHeight = 8,
            Epochs = 2,
            BatchSize = 16,
            ValidationSetFraction = 0.125,
            Distributed = distributed
                ? new DistributedTrainingOptions { GradientExchange = Enum.Parse<GradientExchangeFormat>(settings.GetValueOrDefault("exchange", "Fp32")) }
                : null,
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        var model = pipeline.Fit(data);

        var scores = model.Transform(data).GetColumn<float[]>("Score").ToList();
        var hash = 14695981039346656037UL;
        foreach (var value in scores.SelectMany(s => s))
            hash = (hash ^ (uint)BitConverter.SingleToInt32Bits(value)) * 1099511628211UL;
        Console.WriteLine($"rank {rank}: log lines {logLines}");
        Console.WriteLine($"rank {rank}: scores {scores.Count} {hash:x16}");
        if (rank == 0 && settings.TryGetValue("out", out var folder))
            ml.Model.SaveAtomically(model, data.Schema, Path.Combine(folder, "model.zip"));
        return 0;
    }

    private sealed class Row
    {
        public string Label { get; set; } = string.Empty;

        [VectorType(64)]
        public float[] Pixels { get; set; } = [];
    }
}
