using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Trainers;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>The image column may be encoded bytes (covered by the fixture), an MLImage, or a float pixel vector.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class ImageColumnKindTests(TrainedModelFixture fixture) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sdfp-kinds-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static SDfpImageClassificationTrainer.Options Quick(string feature)
    {
        var options = TrainedModelFixture.SmallOptions(feature);
        options.Epochs = 1;
        options.BatchSize = 16;
        options.ImageWidth = 16;
        options.ImageHeight = 16;
        options.ValidationSetFraction = 0;
        return options;
    }

    private List<ImageRow> Sample(int count) => FashionMnistFolders.List(fixture.TrainFolder).Where((_, i) => i % 8 == 0).Take(count).ToList();

    private void ScoresAndRoundTrips(MLContext ml, ITransformer model, IDataView data)
    {
        static List<float[]> Scores(ITransformer m, IDataView d) =>
            m.Transform(d).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToList();
        var before = Scores(model, data);
        Assert.All(before, s => Assert.InRange(s.Sum(), 0.999f, 1.001f));
        string path = Path.Combine(_dir, "model.zip");
        ml.Model.SaveAtomically(model, data.Schema, path);
        var fresh = new MLContext();
        var after = Scores(fresh.Model.Load(path, out _), data);
        Assert.Equal(before, after);
    }

    [Fact]
    public void An_MLImage_column_from_LoadImages_trains_scores_and_round_trips()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Sample(48));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", null, "ImagePath"))
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(Quick("Image")));
        var model = pipeline.Fit(data);
        var classifier = model.LastTransformer;
        // Grey PNGs decoded as BGRA: every pixel has R = G = B, so the model gets one channel.
        Assert.Equal((1, 16, 16), classifier.InputShape);
        ScoresAndRoundTrips(ml, model, data);
    }

    [Fact]
    public void A_float_pixel_vector_from_ExtractPixels_trains_scores_and_round_trips()
    {
        var ml = new MLContext(seed: 1);
        IDataView data = ml.Data.LoadFromEnumerable(Sample(48));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.LoadImages("Image", null, "ImagePath"))
            .Append(ml.Transforms.ResizeImages("Image", 20, 20))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(Quick("Pixels")));
        var model = pipeline.Fit(data);
        // 3×20×20 floats, inferred from the vector size, resized bilinearly to the 16×16 model input.
        Assert.Equal((3, 16, 16), model.LastTransformer.InputShape);
        ScoresAndRoundTrips(ml, model, data);
    }

    [Fact]
    public void A_float_vector_whose_shape_cannot_be_inferred_asks_for_FeatureVectorShape()
    {
        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 8).Select(i => new OddVector { Label = (i % 2).ToString(), Pixels = new float[10] });
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(Quick("Pixels")));
        var ex = Assert.ThrowsAny<ArgumentException>(() => pipeline.Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("'Pixels'", ex.Message);
        Assert.Contains("FeatureVectorShape", ex.Message);
    }

    private sealed class OddVector
    {
        public string Label { get; set; } = string.Empty;

        [VectorType(10)]
        public float[] Pixels { get; set; } = Array.Empty<float>();
    }
}
