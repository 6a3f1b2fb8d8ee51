using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Persistence;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Training.Models;
using Xunit.Abstractions;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>ONNX Runtime on the exact integer graph against TorchSharp scoring of the same trained model.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class OnnxRuntimeScoringTests(TrainedModelFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void Onnx_runtime_predicts_the_TorchSharp_labels_with_scores_within_1e5()
    {
        using SDfpOnnxImageClassifier onnx = fixture.Classifier.WithOnnxRuntime();
        var expected = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.TestData);
        var actual = TrainedModelFixture.Scores(fixture.Ml, Replace(fixture.Model, onnx), fixture.TestData);

        Assert.Equal(expected.Count, actual.Count);
        float maxDiff = 0;
        int identical = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(ArgMax(expected[i]), ArgMax(actual[i]));
            float diff = expected[i].Zip(actual[i], (a, b) => MathF.Abs(a - b)).Max();
            maxDiff = MathF.Max(maxDiff, diff);
            identical += diff == 0 ? 1 : 0;
        }

        output.WriteLine($"{expected.Count} images: max |score difference| {maxDiff:E2}, {identical} bit-identical");
        Assert.True(maxDiff <= 1e-5f, $"max |score difference| {maxDiff}");
    }

    [Fact]
    public void Float_graph_of_the_same_network_scores_close_but_is_not_the_training_arithmetic()
    {
        using SDfpOnnxImageClassifier onnx = fixture.Classifier.WithOnnxRuntime(OnnxGraphKind.Float);
        var expected = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.TestData);
        var actual = TrainedModelFixture.Scores(fixture.Ml, Replace(fixture.Model, onnx), fixture.TestData);
        int agree = expected.Zip(actual, (a, b) => ArgMax(a) == ArgMax(b) ? 1 : 0).Sum();
        output.WriteLine($"FP32 graph agrees on {agree} of {expected.Count} labels");
        Assert.True(agree >= expected.Count * 8 / 10, $"{agree} of {expected.Count}");
    }

    [Fact]
    public void A_saved_model_loads_for_ONNX_Runtime_and_scores_like_TorchSharp_through_PredictionEngine_and_Transform()
    {
        MLContext ml = fixture.Ml;
        string path = Path.Combine(fixture.Root, "for-onnx.zip");
        ml.Model.Save(fixture.Model, fixture.TrainData.Schema, path);
        var loaded = (TransformerChain<ITransformer>)ml.Model.LoadWithOnnxRuntime(path, out _);
        using var onnx = Assert.IsType<SDfpOnnxImageClassifier>(loaded.Single(t => t is SDfpImageClassifier));

        var expected = ml.Data.CreateEnumerable<ImagePrediction>(fixture.Model.Transform(fixture.TestData), reuseRowObject: false).ToList();
        var actual = ml.Data.CreateEnumerable<ImagePrediction>(loaded.Transform(fixture.TestData), reuseRowObject: false).ToList();
        Assert.Equal(expected.Select(p => p.PredictedLabel), actual.Select(p => p.PredictedLabel));
        Assert.All(expected.Zip(actual), pair => AssertClose(pair.First.Score!, pair.Second.Score!));

        var torchEngine = ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(fixture.Model);
        var onnxEngine = ml.Model.CreatePredictionEngine<ImageRow, ImagePrediction>(loaded);
        foreach (ImageRow row in fixture.TestRows.Take(10))
        {
            ImagePrediction t = torchEngine.Predict(row), o = onnxEngine.Predict(row);
            Assert.Equal(t.PredictedLabel, o.PredictedLabel);
            AssertClose(t.Score!, o.Score!);
        }

        // Saved again from ONNX Runtime it is the same model: back on TorchSharp it scores bit for bit as before.
        string again = Path.Combine(fixture.Root, "from-onnx.zip");
        ml.Model.Save(loaded, fixture.TrainData.Schema, again);
        ITransformer reloaded = ml.Model.Load(again, out _);
        Assert.IsType<SDfpImageClassificationTransformer>(((TransformerChain<ITransformer>)reloaded).Single(t => t is SDfpImageClassifier));
        Assert.Equal(TrainedModelFixture.Scores(ml, fixture.Model, fixture.TestData), TrainedModelFixture.Scores(ml, reloaded, fixture.TestData));
    }

    [Fact]
    public void A_first_format_model_still_loads_on_TorchSharp_and_re_saved_scores_on_ONNX_Runtime()
    {
        // A ResNet-20 written in format 0x00010001 (loader in the training package) by samples/ImageClassification.
        MLContext ml = fixture.Ml;
        string legacy = Path.Combine(AppContext.BaseDirectory, "Fixtures", "resnet20-format-00010001.zip");
        var old = (TransformerChain<ITransformer>)ml.Model.Load(legacy, out DataViewSchema schema);
        Assert.IsType<SDfpImageClassificationTransformer>(old.Single(t => t is SDfpImageClassifier));
        string resaved = Path.Combine(fixture.Root, "resaved.zip");
        ml.Model.Save(old, schema, resaved);
        ITransformer onnx = ml.Model.LoadWithOnnxRuntime(resaved, out _);

        IDataView rows = ml.Data.LoadFromEnumerable(fixture.TestRows.Take(30));
        var expected = ml.Data.CreateEnumerable<ImagePrediction>(old.Transform(rows), reuseRowObject: false).ToList();
        var actual = ml.Data.CreateEnumerable<ImagePrediction>(onnx.Transform(rows), reuseRowObject: false).ToList();
        Assert.Equal(expected.Select(p => p.PredictedLabel), actual.Select(p => p.PredictedLabel));
        Assert.All(expected.Zip(actual), pair => AssertClose(pair.First.Score!, pair.Second.Score!));
    }

    [Fact]
    public void Stored_architecture_ids_name_the_training_package_architectures()
    {
        Assert.Equal(Enum.GetNames<ResNetArchitecture>(), ClassifierModelFile.ArchitectureNames);
        Assert.Equal(Enum.GetValues<ResNetArchitecture>().Select(a => (int)a), Enumerable.Range(0, ClassifierModelFile.ArchitectureNames.Length));
    }

    [Fact]
    public void The_readers_exponent_range_is_the_training_packages()
    {
        Assert.Equal(Dfp.MinExponent, ClassifierHeader.MinExponent);
        Assert.Equal(Dfp.MaxExponent, ClassifierHeader.MaxExponent);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float diff = expected.Zip(actual, (a, b) => MathF.Abs(a - b)).Max();
        Assert.True(diff <= 1e-5f, $"max |score difference| {diff}");
    }

    /// <summary>The pipeline with its S-DFP stage replaced by <paramref name="classifier"/>.</summary>
    internal static TransformerChain<ITransformer> Replace(TransformerChain<ITransformer> model, ITransformer classifier) =>
        new(model.Select(t => t is SDfpImageClassifier ? classifier : t).ToArray());

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());
}
