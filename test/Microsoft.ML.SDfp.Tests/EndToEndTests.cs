using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Numerics.Formats;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>The Model Builder-style pipeline on real images in folders, and the ML.NET APIs that consume its outputs.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class EndToEndTests(TrainedModelFixture fixture)
{
    [Fact]
    public void Training_on_image_folders_learns_far_better_than_chance_and_Evaluate_accepts_the_outputs()
    {
        IDataView scored = fixture.Model.Transform(fixture.TestData);
        // MapKeyToValue turned PredictedLabel into text; Evaluate needs the key, so evaluate the classifier's own output.
        IDataView keyed = fixture.Model.Take(3).Aggregate(fixture.TestData, (data, t) => t.Transform(data));
        MulticlassClassificationMetrics metrics = fixture.Ml.MulticlassClassification.Evaluate(keyed, "Label", "Score", "PredictedLabel");

        Assert.True(metrics.MicroAccuracy > 0.25, $"micro accuracy {metrics.MicroAccuracy:P1} after 2 epochs on {TrainedModelFixture.TrainImages} images");
        Assert.True(double.IsFinite(metrics.LogLoss));
        Assert.Equal(10, metrics.ConfusionMatrix.NumberOfClasses);
        Assert.Equal(TrainedModelFixture.TestImages, fixture.Ml.Data.CreateEnumerable<ImagePrediction>(scored, false).Count());
    }

    [Fact]
    public void Score_column_carries_the_annotations_of_multiclass_scores()
    {
        DataViewSchema schema = fixture.Model.GetOutputSchema(fixture.TestData.Schema);
        DataViewSchema.Column score = schema["Score"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 10), score.Type);

        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        score.GetSlotNames(ref slotNames);
        Assert.Equal(fixture.Classifier.ClassNames, slotNames.DenseValues().Select(s => s.ToString()));

        ReadOnlyMemory<char> kind = default;
        score.Annotations.GetValue("ScoreColumnKind", ref kind);
        Assert.Equal("MulticlassClassification", kind.ToString());
        score.Annotations.GetValue("ScoreValueKind", ref kind);
        Assert.Equal("Score", kind.ToString());
        Assert.NotNull(score.Annotations.Schema.GetColumnOrNull("ScoreColumnSetId"));
        Assert.NotNull(score.Annotations.Schema.GetColumnOrNull("TrainingLabelValues"));

        DataViewSchema classifierOutput = fixture.Classifier.GetOutputSchema(fixture.Model.Take(2).Aggregate(fixture.TestData, (d, t) => t.Transform(d)).Schema);
        Assert.IsType<KeyDataViewType>(classifierOutput["PredictedLabel"].Type);
        Assert.Equal(10UL, ((KeyDataViewType)classifierOutput["PredictedLabel"].Type).Count);
    }

    [Fact]
    public void Scores_are_probabilities_and_the_predicted_label_is_their_argmax()
    {
        var predictions = fixture.Ml.Data.CreateEnumerable<ImagePrediction>(fixture.Model.Transform(fixture.TestData), false).ToList();
        var names = fixture.Classifier.ClassNames;
        foreach (ImagePrediction p in predictions)
        {
            Assert.Equal(10, p.Score!.Length);
            Assert.InRange(p.Score.Sum(), 0.999f, 1.001f);
            Assert.All(p.Score, s => Assert.InRange(s, 0f, 1f));
            int argmax = Array.IndexOf(p.Score, p.Score.Max());
            Assert.Equal(names[argmax], p.PredictedLabel);
        }
    }

    [Fact]
    public void Progress_and_epoch_metrics_reach_MLContext_Log_and_the_callback()
    {
        Assert.Equal(2, fixture.Epochs.Count);
        Assert.Equal(new[] { 1, 2 }, fixture.Epochs.Select(e => e.Epoch));
        Assert.All(fixture.Epochs, e =>
        {
            Assert.True(double.IsFinite(e.TrainLoss));
            Assert.NotNull(e.ValidationAccuracy);
            Assert.True(e.LearningRate > 0);
            Assert.Contains(Numerics.Formats.TensorRole.Activation, e.WorstSaturationByRole.Keys);
        });
        Assert.Contains(fixture.Log, m => m.Contains("epoch 1:", StringComparison.Ordinal));
        Assert.Contains(fixture.Log, m => m.Contains("Decoded 400 training images", StringComparison.Ordinal) || m.Contains("Decoded 360", StringComparison.Ordinal));
    }

    [Fact]
    public void Quantisation_telemetry_is_written_to_the_requested_path()
    {
        string path = fixture.Options.TelemetryOutputPath!;
        Assert.True(File.Exists(path), path);
        string[] lines = File.ReadAllLines(path);
        Assert.True(lines.Length > 10, $"{lines.Length} lines");
        Assert.Contains("layer1.0.conv1", string.Join("\n", lines.Take(200)));
    }

    [Fact]
    public void PredictionEngine_returns_the_same_scores_as_Transform()
    {
        var engine = fixture.Ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(fixture.Model);
        List<float[]> batched = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.TestData);
        for (int i = 0; i < 20; i++)
        {
            ImagePrediction p = engine.Predict(fixture.TestRows[i]);
            Assert.Contains(p.PredictedLabel, fixture.Classifier.ClassNames);
            // Activations use static exponents, so a row's quantisation does not depend on its batch; libtorch's FP32
            // kernels (stem conv, classifier) may still round differently for a batch of 1 and of 64, by an ulp or so.
            for (int c = 0; c < p.Score!.Length; c++)
            {
                Assert.Equal(batched[i][c], p.Score[c], 1e-5f);
            }
        }
    }
}
