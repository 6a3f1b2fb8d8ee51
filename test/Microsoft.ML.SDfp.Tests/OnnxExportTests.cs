using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.SDfp.Onnx;
using Microsoft.ML.SDfp.Persistence;
using SkiaSharp;
using Xunit.Abstractions;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>ONNX export: a whole pipeline through ConvertToOnnx, and the standalone graph on the ONNX Runtime C# API.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class OnnxExportTests(TrainedModelFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void Standalone_onnx_runs_on_the_ONNX_Runtime_API_alone_and_matches_TorchSharp()
    {
        string path = Path.Combine(fixture.Root, "standalone.onnx");
        using (FileStream file = File.Create(path))
        {
            fixture.Classifier.SaveAsOnnx(file);
        }

        List<ImageRow> rows = fixture.TestRows.Take(40).ToList();
        List<float[]> expected = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.Ml.Data.LoadFromEnumerable(rows));

        // No ML.NET from here on: decode with SkiaSharp, run with ONNX Runtime.
        const int size = 28;
        var pixels = new float[rows.Count * 3 * size * size];
        for (int i = 0; i < rows.Count; i++)
        {
            using SKBitmap bitmap = SKBitmap.Decode(rows[i].ImagePath).Copy(SKColorType.Rgba8888);
            for (int y = 0; y < size; y++)
            {
                for (int x = 0; x < size; x++)
                {
                    SKColor c = bitmap.GetPixel(x, y);
                    int p = (i * 3 * size * size) + (y * size) + x;
                    pixels[p] = c.Red / 255f;
                    pixels[p + (size * size)] = c.Green / 255f;
                    pixels[p + (2 * size * size)] = c.Blue / 255f;
                }
            }
        }

        using var session = new InferenceSession(path);
        Assert.Equal(["pixels"], session.InputMetadata.Keys);
        using OrtValue input = OrtValue.CreateTensorValueFromMemory(pixels, [rows.Count, 3, size, size]);
        using var results = session.Run(new RunOptions(), ["pixels"], [input], ["probabilities", "predicted_label"]);
        float[] probabilities = results[0].GetTensorDataAsSpan<float>().ToArray();
        uint[] predicted = results[1].GetTensorDataAsSpan<uint>().ToArray();
        int classes = fixture.Classifier.ClassCount;
        float maxDiff = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            float[] actual = probabilities.AsSpan(i * classes, classes).ToArray();
            Assert.Equal(ArgMax(expected[i]) + 1, (int)predicted[i]);
            maxDiff = MathF.Max(maxDiff, expected[i].Zip(actual, (a, b) => MathF.Abs(a - b)).Max());
        }

        output.WriteLine($"{rows.Count} images, max |score difference| {maxDiff:E2}");
        Assert.True(maxDiff <= 1e-5f, $"max |score difference| {maxDiff}");
    }

    [Fact]
    public void ConvertToOnnx_exports_the_Model_Builder_pipeline_and_the_ApplyOnnxModel_recipe_scores_it()
    {
        // Model Builder's shape: image bytes in the data, MapValueToKey → trainer → MapKeyToValue.
        MLContext ml = fixture.Ml;
        List<ImageRow> rows = fixture.TestRows.Take(50).ToList();
        IDataView bytes = ml.Data.LoadFromEnumerable(rows.Select(r => new ImageBytesRow { Label = r.Label, Image = File.ReadAllBytes(r.ImagePath) }));
        ITransformer[] stages = fixture.Model.ToArray();
        var model = new TransformerChain<ITransformer>(stages[0], fixture.Classifier, stages[3]);
        string path = Path.Combine(fixture.Root, "pipeline.onnx");
        using (FileStream file = File.Create(path))
        {
            ml.Model.ConvertToOnnx(model, bytes, file);
        }

        using (var session = new InferenceSession(path))
        {
            Assert.Equal([1, 3, 28, 28], session.InputMetadata["Image"].Dimensions.Select(d => Math.Abs(d)));
        }

        IDataView paths = ml.Data.LoadFromEnumerable(rows);
        var recipe = ml.Transforms.LoadImages("Decoded", imageFolder: null, inputColumnName: nameof(ImageRow.ImagePath))
            .Append(ml.Transforms.ResizeImages("Decoded", 28, 28))
            .Append(ml.Transforms.ExtractPixels("Image", "Decoded", interleavePixelColors: false, scaleImage: 1 / 255f))
            .Append(ml.Transforms.ApplyOnnxModel(["Score.output", "PredictedLabel.output"], ["Label", "Image"], path));
        IDataView onnxScored = recipe.Fit(paths).Transform(paths);
        var actual = ml.Data.CreateEnumerable<OnnxPrediction>(onnxScored, reuseRowObject: false).ToList();
        var expected = ml.Data.CreateEnumerable<ImagePrediction>(model.Transform(bytes), reuseRowObject: false).ToList();

        Assert.Equal(expected.Count, actual.Count);
        int sameLabel = 0;
        float maxDiff = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            sameLabel += expected[i].PredictedLabel == actual[i].PredictedLabel[0] ? 1 : 0;
            maxDiff = MathF.Max(maxDiff, expected[i].Score!.Zip(actual[i].Score, (a, b) => MathF.Abs(a - b)).Max());
        }

        output.WriteLine($"{expected.Count} images: {sameLabel} same labels, max |score difference| {maxDiff:E2}");
        Assert.Equal(expected.Count, sameLabel);
        Assert.True(maxDiff <= 1e-5f, $"max |score difference| {maxDiff}");
    }

    [Fact]
    public void Formats_wider_than_8_bits_are_refused_with_a_clear_error()
    {
        ScoringNetwork network = fixture.Classifier.ScoringNetwork;
        var wideActivations = new ScoringNetwork(network.Architecture, network.Channels, network.Height, network.Width, network.ClassCount,
            network.Mean, network.Std, network.Tensors.Values.ToList(), network.ActivationExponents, activationBits: 12);
        var error = Assert.Throws<NotSupportedException>(() => ResNetGraphEmitter.CheckExpressible(wideActivations, OnnxGraphKind.Exact));
        Assert.Contains("12 bits", error.Message, StringComparison.Ordinal);

        StoredTensor weight = network.Tensors["layer1.0.conv1.weight"];
        var wide = new StoredTensor(weight.Name, StoredTensorKind.Int16, weight.Shape, 10, weight.Exponent, int16: weight.Int8!.Select(v => (short)v).ToArray());
        var wideWeights = new ScoringNetwork(network.Architecture, network.Channels, network.Height, network.Width, network.ClassCount,
            network.Mean, network.Std, network.Tensors.Values.Select(t => t.Name == weight.Name ? wide : t).ToList(), network.ActivationExponents, network.ActivationBits);
        error = Assert.Throws<NotSupportedException>(() => ResNetGraphEmitter.CheckExpressible(wideWeights, OnnxGraphKind.Exact));
        Assert.Contains("'layer1.0.conv1.weight'", error.Message, StringComparison.Ordinal);
        Assert.Contains("10 bits", error.Message, StringComparison.Ordinal);
    }

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    private sealed class ImageBytesRow
    {
        public string Label { get; set; } = string.Empty;

        public byte[] Image { get; set; } = [];
    }

    private sealed class OnnxPrediction
    {
        // OnnxTransformer names its columns after the graph outputs without ML.NET's ".output" suffix.
        public float[] Score { get; set; } = [];

        public string[] PredictedLabel { get; set; } = [];
    }
}
