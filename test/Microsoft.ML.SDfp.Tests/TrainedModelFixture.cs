using System.Collections.Concurrent;
using ImageClassification;
using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Trainers;
using Microsoft.ML.SDfp.Training;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>
/// One small model trained once for the whole test collection: 400 Fashion-MNIST training images and 100 test images
/// exported as PNG folders, ResNet-20 in S-DFP8, 2 epochs at 28×28, through the Model Builder-style pipeline.
/// </summary>
public sealed class TrainedModelFixture : IDisposable
{
    public const int TrainImages = 400;
    public const int TestImages = 100;

    public TrainedModelFixture()
    {
        TorchSharpRuntime.EnsureLoaded();
        Root = Path.Combine(Path.GetTempPath(), "sdfp-mlnet-tests-" + Guid.NewGuid().ToString("N"));
        TrainFolder = Path.Combine(Root, "train");
        TestFolder = Path.Combine(Root, "test");
        FashionMnistExporter.ExportIfMissing(TrainFolder, train: true, TrainImages);
        FashionMnistExporter.ExportIfMissing(TestFolder, train: false, TestImages);

        Ml = new MLContext(seed: 1);
        Ml.Log += (_, e) =>
        {
            if (e.Source.Contains("SDfp", StringComparison.Ordinal))
            {
                Log.Enqueue(e.Message);
            }
        };
        TrainData = Ml.Data.LoadFromEnumerable(FashionMnistFolders.List(TrainFolder));
        TestRows = FashionMnistFolders.List(TestFolder);
        TestData = Ml.Data.LoadFromEnumerable(TestRows);
        Options = SmallOptions("Image");
        Options.MetricsCallback = m => Epochs.Add(m);
        Options.KeepMasterWeights = true;
        Options.TelemetryOutputPath = Path.Combine(Root, "telemetry.csv");
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        Model = Pipeline(Ml, Options).Fit(TrainData);
        TrainingTime = stopwatch.Elapsed;
    }

    public string Root { get; }

    public string TrainFolder { get; }

    public string TestFolder { get; }

    public MLContext Ml { get; }

    public IDataView TrainData { get; }

    public IDataView TestData { get; }

    public List<ImageRow> TestRows { get; }

    public SDfpImageClassificationTrainer.Options Options { get; }

    public TransformerChain<ITransformer> Model { get; }

    public TimeSpan TrainingTime { get; }

    public ConcurrentQueue<string> Log { get; } = new();

    public List<EpochMetrics> Epochs { get; } = new();

    /// <summary>The S-DFP transformer inside <see cref="Model"/>.</summary>
    public SDfpImageClassificationTransformer Classifier => Model.OfType<SDfpImageClassificationTransformer>().Single();

    /// <summary>Settings small enough for unit tests: ResNet-20, S-DFP8, 2 epochs, 28×28, batch 32.</summary>
    public static SDfpImageClassificationTrainer.Options SmallOptions(string featureColumn) => new()
    {
        FeatureColumnName = featureColumn,
        Epochs = 2,
        BatchSize = 32,
        LearningRate = 0.05,
        ImageWidth = 28,
        ImageHeight = 28,
        ValidationSetFraction = 0.1,
        Seed = 1,
    };

    /// <summary>MapValueToKey(Label) → LoadRawImageBytes(Image ← ImagePath) → trainer → MapKeyToValue(PredictedLabel).</summary>
    public static EstimatorChain<ITransformer> Pipeline(MLContext ml, SDfpImageClassificationTrainer.Options options) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append<ITransformer>(ml.MulticlassClassification.Trainers.SDfpImageClassification(options))
            .Append<ITransformer>(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    /// <summary>Scores of every row of <paramref name="data"/> through <see cref="Model"/>'s Transform.</summary>
    public static List<float[]> Scores(MLContext ml, ITransformer model, IDataView data) =>
        ml.Data.CreateEnumerable<ImagePrediction>(model.Transform(data), reuseRowObject: false).Select(p => p.Score!).ToList();

    public void Dispose()
    {
        Classifier.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless; never fail a test run over cleanup.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class TrainedModelCollection : ICollectionFixture<TrainedModelFixture>
{
    public const string Name = "Trained S-DFP model";
}
