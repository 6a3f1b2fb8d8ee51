using Microsoft.ML.Data;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Trainers;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>
/// Regression tests of issue 10's items 5–8: truncated images, bad rows in scoring, misleading messages, and
/// cancellation while decoding.
/// </summary>
[Collection(TrainedModelCollection.Name)]
public sealed class BadInputTests(TrainedModelFixture fixture) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sdfp-bad-input-").FullName;

    private MLContext Ml => fixture.Ml;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private List<ImageRow> Rows(int count) => FashionMnistFolders.List(fixture.TrainFolder).Where((_, i) => i % 10 == 0).Take(count).ToList();

    private static SDfpImageClassificationTrainer.Options Fast()
    {
        var o = TrainedModelFixture.SmallOptions("Image");
        o.Epochs = 1;
        o.ValidationSetFraction = 0;
        return o;
    }

    private EstimatorChain<ITransformer> Pipeline(SDfpImageClassificationTrainer.Options options) =>
        Ml.Transforms.Conversion.MapValueToKey("Label").Append(Ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append<ITransformer>(Ml.MulticlassClassification.Trainers.SDfpImageClassification(options));

    /// <summary>A copy of a real image cut in half: SkiaSharp decodes it with IncompleteInput.</summary>
    private string Truncated(ImageRow source)
    {
        byte[] bytes = File.ReadAllBytes(source.ImagePath);
        string path = Path.Combine(_dir, "truncated-" + Path.GetFileName(source.ImagePath));
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        return path;
    }

    [Fact]
    public void A_truncated_image_fails_scoring_naming_the_file_and_the_truncation()
    {
        string truncated = Truncated(fixture.TestRows[0]);
        var engine = Ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(fixture.Model);
        var ex = Assert.Throws<ImageDecodeException>(() => engine.Predict(new ImageRow { ImagePath = truncated }));
        Assert.Contains(truncated, ex.Message);
        Assert.Contains("truncated", ex.Message);
        // A PredictionEngine has no data-set row: its position counts calls, so no "row N" is quoted.
        Assert.DoesNotContain(" at row ", ex.Message);
        Assert.Equal(-1, ex.Row);

        IDataView data = Ml.Data.LoadFromEnumerable(new[] { fixture.TestRows[1], new ImageRow { ImagePath = truncated, Label = fixture.TestRows[0].Label } });
        var transformError = Assert.ThrowsAny<Exception>(() => TrainedModelFixture.Scores(Ml, fixture.Model, data));
        var decode = Assert.IsType<ImageDecodeException>(transformError.GetBaseException());
        Assert.Contains(truncated, decode.Message);
        Assert.Equal(1, decode.Row);
    }

    [Fact]
    public void A_truncated_training_image_fails_Fit_or_is_skipped_with_a_count_when_opted_in()
    {
        List<ImageRow> rows = Rows(24);
        string truncated = Truncated(rows[5]);
        rows.Insert(7, new ImageRow { ImagePath = truncated, Label = rows[5].Label });
        IDataView data = Ml.Data.LoadFromEnumerable(rows);

        var ex = Assert.Throws<ImageDecodeException>(() => Pipeline(Fast()).Fit(data));
        Assert.Contains(truncated, ex.Message);
        Assert.Contains("truncated", ex.Message);

        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var ml = new MLContext(seed: 1);
        ml.Log += (_, e) => log.Enqueue(e.Message);
        var options = Fast();
        options.SkipUndecodableImages = true;
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append<ITransformer>(ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        using var model = (IDisposable)pipeline.Fit(data).OfType<SDfpImageClassificationTransformer>().Single();
        Assert.Contains(log, m => m.Contains("Skipped 1 images of the training data", StringComparison.Ordinal) && m.Contains(truncated, StringComparison.Ordinal));
    }

    [Fact]
    public void SkipUndecodableImages_scores_a_data_set_with_bad_rows_and_logs_the_count()
    {
        string truncated = Truncated(fixture.TestRows[0]);
        string missing = Path.Combine(_dir, "missing.png");
        string text = Path.Combine(_dir, "text.png");
        File.WriteAllText(text, "not an image");
        var rows = fixture.TestRows.Take(6).ToList();
        rows.Insert(2, new ImageRow { ImagePath = truncated, Label = rows[0].Label });
        rows.Insert(4, new ImageRow { ImagePath = missing, Label = rows[0].Label });
        rows.Add(new ImageRow { ImagePath = text, Label = rows[0].Label });

        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var ml = new MLContext(seed: 1);
        ml.Log += (_, e) => log.Enqueue(e.Message);
        IDataView good = ml.Data.SkipUndecodableImages(ml.Data.LoadFromEnumerable(rows));
        List<float[]> scores = TrainedModelFixture.Scores(ml, fixture.Model, good);

        Assert.Equal(TrainedModelFixture.Scores(ml, fixture.Model, ml.Data.LoadFromEnumerable(fixture.TestRows.Take(6).ToList())), scores);
        string warning = log.First(m => m.Contains("Skipped 3 rows", StringComparison.Ordinal));
        Assert.Contains(truncated, warning);
        Assert.Contains(missing, warning);
        Assert.Contains(text, warning);
        MulticlassClassificationMetrics metrics = ml.MulticlassClassification.Evaluate(fixture.Model.Transform(good));
        Assert.InRange(metrics.MicroAccuracy, 0, 1);
    }

    [Fact]
    public void An_empty_training_set_says_it_is_empty_not_one_class()
    {
        IDataView empty = Ml.Data.LoadFromEnumerable(new List<ImageRow>());
        var ex = Assert.ThrowsAny<ArgumentException>(() => Pipeline(Fast()).Fit(empty));
        Assert.Contains("empty", ex.Message);
        Assert.DoesNotContain("class", ex.Message);
    }

    [Theory]
    [InlineData("Epochs")]
    [InlineData("ActivationShift")]
    [InlineData("ErrorShift")]
    public void Option_errors_name_the_MLNET_option_and_are_raised_when_the_trainer_is_created(string option)
    {
        var options = Fast();
        switch (option)
        {
            case "Epochs":
                options.Epochs = 0;
                break;
            case "ActivationShift":
                options.ActivationShift = 100;
                break;
            default:
                options.ErrorShift = -40;
                break;
        }

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        Assert.Contains($"SDfpImageClassificationTrainer.Options.{option}", ex.Message);
        Assert.DoesNotContain("TrainingOptions", ex.Message);
        Assert.DoesNotContain("DfpFormat", ex.Message);
    }

    [Fact]
    public void Divergence_advice_names_only_options_the_MLNET_stage_has()
    {
        var rows = Enumerable.Range(0, 16).Select(i => new VectorRow { Label = (i % 2).ToString(), Pixels = Enumerable.Repeat(float.NaN, 16 * 16).ToArray() });
        var options = Fast();
        options.FeatureColumnName = "Pixels";
        options.ImageWidth = options.ImageHeight = 16;
        options.BatchSize = 8;
        var pipeline = Ml.Transforms.Conversion.MapValueToKey("Label").Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        var ex = Assert.Throws<InvalidOperationException>(() => pipeline.Fit(Ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("diverged", ex.Message);
        Assert.Contains("Options.LearningRate", ex.Message);
        Assert.DoesNotContain("TrainingOptions", ex.Message);
        Assert.DoesNotContain("NonFinitePolicy", ex.Message);
    }

    [Fact]
    public void A_shift_that_saturates_most_errors_is_warned_about()
    {
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var ml = new MLContext(seed: 1);
        ml.Log += (_, e) => log.Enqueue(e.Message);
        var options = Fast();
        options.ErrorShift = 8; // at 8 bits every error but the largest saturates
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append<ITransformer>(ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        using var model = (IDisposable)pipeline.Fit(ml.Data.LoadFromEnumerable(Rows(64))).OfType<SDfpImageClassificationTransformer>().Single();
        Assert.Contains(log, m => m.Contains("saturate", StringComparison.Ordinal) && m.Contains("Options.ErrorShift", StringComparison.Ordinal));
    }

    [Fact]
    public void Cancellation_is_seen_at_the_next_image_while_decoding()
    {
        // A streamed source feeds the trainer directly (no transform in between, so nothing reads ahead); the token is
        // cancelled when the 3rd row is produced, and decoding must stop there, not at the next multiple of 64.
        using var cancellation = new CancellationTokenSource();
        int produced = 0;
        IEnumerable<KeyedVectorRow> Stream()
        {
            for (int i = 0; i < 100; i++)
            {
                if (++produced == 3)
                {
                    cancellation.Cancel();
                }

                yield return new KeyedVectorRow { Label = (uint)(i % 2) + 1, Pixels = Enumerable.Repeat(i / 100f, 256).ToArray() };
            }
        }

        var schema = SchemaDefinition.Create(typeof(KeyedVectorRow));
        schema["Label"].ColumnType = new KeyDataViewType(typeof(uint), 2);
        schema["Label"].AddAnnotation("KeyValues", new VBuffer<ReadOnlyMemory<char>>(2, ["a".AsMemory(), "b".AsMemory()]),
            new VectorDataViewType(TextDataViewType.Instance, 2));
        var options = Fast();
        options.FeatureColumnName = "Pixels";
        options.ImageWidth = options.ImageHeight = 16;
        options.CancellationToken = cancellation.Token;
        var ex = Assert.ThrowsAny<OperationCanceledException>(() =>
            Ml.MulticlassClassification.Trainers.SDfpImageClassification(options).Fit(Ml.Data.LoadFromEnumerable(Stream(), schema)));
        Assert.Contains("decoding", ex.Message);
        Assert.Equal(3, produced);
    }

    private sealed class KeyedVectorRow
    {
        public uint Label { get; set; }

        [VectorType(256)]
        public float[] Pixels { get; set; } = Array.Empty<float>();
    }

    private sealed class VectorRow
    {
        public string Label { get; set; } = string.Empty;

        [VectorType(256)]
        public float[] Pixels { get; set; } = Array.Empty<float>();
    }
}
