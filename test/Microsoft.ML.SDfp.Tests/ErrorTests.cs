using Microsoft.ML.Data;
using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Trainers;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Each kind of bad input gets an error that names the column, row or file.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class ErrorTests(TrainedModelFixture fixture)
{

    private MLContext Ml => fixture.Ml;

    // Every 20th image of the class folders: a few images of every class.
    private IDataView Images(int count) =>
        Ml.Data.LoadFromEnumerable(FashionMnistFolders.List(fixture.TrainFolder).Where((_, i) => i % 20 == 0).Take(count).ToList());

    private IEstimator<ITransformer> Decode() => Ml.Transforms.Conversion.MapValueToKey("Label").Append(Ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"));

    private static SDfpImageClassificationTrainer.Options Fast(string feature = "Image")
    {
        var o = TrainedModelFixture.SmallOptions(feature);
        o.Epochs = 1;
        o.ValidationSetFraction = 0;
        return o;
    }

    [Fact]
    public void A_missing_image_column_is_named()
    {
        var options = Fast("Pixels");
        var ex = Assert.ThrowsAny<ArgumentException>(() => Decode().Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(options)).Fit(Images(10)));
        Assert.Contains("'Pixels'", ex.Message);
        Assert.Contains("not found", ex.Message);
    }

    [Fact]
    public void An_image_column_of_the_wrong_type_is_named_with_its_type()
    {
        var options = Fast("ImagePath");
        var ex = Assert.ThrowsAny<ArgumentException>(() => Decode().Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(options)).Fit(Images(10)));
        Assert.Contains("'ImagePath'", ex.Message);
        Assert.Contains("String", ex.Message);
        Assert.Contains("LoadRawImageBytes", ex.Message);
    }

    [Fact]
    public void A_label_that_is_not_a_key_asks_for_MapValueToKey()
    {
        var pipeline = Ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath").Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(Fast()));
        var ex = Assert.ThrowsAny<ArgumentException>(() => pipeline.Fit(Images(10)));
        Assert.Contains("'Label'", ex.Message);
        Assert.Contains("MapValueToKey", ex.Message);
    }

    [Fact]
    public void Fewer_than_two_classes_is_an_error_naming_the_label_column()
    {
        IDataView oneClass = Ml.Data.LoadFromEnumerable(FashionMnistFolders.List(fixture.TrainFolder).Where(r => r.Label == "Trouser").Take(10));
        var ex = Assert.ThrowsAny<ArgumentException>(() => Decode().Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(Fast())).Fit(oneClass));
        Assert.Contains("'Label'", ex.Message);
        Assert.Contains("at least 2", ex.Message);
    }

    [Fact]
    public void An_empty_training_set_is_an_error()
    {
        var decoder = Decode().Fit(Images(20));
        IDataView empty = decoder.Transform(Ml.Data.LoadFromEnumerable(new List<ImageRow>()));
        var ex = Assert.Throws<InvalidOperationException>(() => Ml.MulticlassClassification.Trainers.SDfpImageClassification(Fast()).Fit(empty));
        Assert.Contains("empty", ex.Message);
    }

    [Fact]
    public void An_undecodable_image_names_its_row_and_file()
    {
        string bad = Path.Combine(fixture.Root, "broken.png");
        File.WriteAllText(bad, "this is not a png");
        var rows = FashionMnistFolders.List(fixture.TrainFolder).Where((_, i) => i % 20 == 0).Take(5).ToList();
        rows.Insert(3, new ImageRow { ImagePath = bad, Label = rows[0].Label });
        var ex = Assert.Throws<ImageDecodeException>(() =>
            Decode().Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(Fast())).Fit(Ml.Data.LoadFromEnumerable(rows)));
        Assert.Contains("row 3", ex.Message);
        Assert.Contains(bad, ex.Message);
        Assert.Contains("'Image'", ex.Message);
        Assert.Equal(3, ex.Row);
    }

    [Fact]
    public void A_validation_set_with_a_different_schema_is_rejected_naming_the_column()
    {
        var decoder = Decode().Fit(Images(20));
        IDataView train = decoder.Transform(Images(20));
        IDataView validation = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(Images(20)).Transform(Images(20)); // no Image column
        var options = Fast();
        options.ValidationSet = validation;
        var ex = Assert.ThrowsAny<ArgumentException>(() => Ml.MulticlassClassification.Trainers.SDfpImageClassification(options).Fit(train));
        Assert.Contains("validation set", ex.Message);
        Assert.Contains("'Image'", ex.Message);
    }

    [Fact]
    public void A_NaN_loss_stops_training_with_an_error_naming_the_epoch_and_step()
    {
        // Float-vector images with NaN pixels: the very first loss is NaN.
        var rows = Enumerable.Range(0, 16).Select(i => new VectorRow { Label = (i % 2).ToString(), Pixels = Enumerable.Repeat(float.NaN, 16 * 16).ToArray() });
        IDataView data = Ml.Data.LoadFromEnumerable(rows);
        var options = Fast("Pixels");
        options.ImageWidth = 16;
        options.ImageHeight = 16;
        options.BatchSize = 8;
        var pipeline = Ml.Transforms.Conversion.MapValueToKey("Label").Append(Ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        var ex = Assert.Throws<InvalidOperationException>(() => pipeline.Fit(data));
        Assert.Contains("diverged", ex.Message);
        Assert.Contains("epoch 1", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void The_options_cancellation_token_stops_training_between_steps()
    {
        using var cancellation = new CancellationTokenSource();
        var ml = new MLContext(seed: 1);
        var options = Fast();
        options.Epochs = 3;
        options.CancellationToken = cancellation.Token;
        options.MetricsCallback = _ => cancellation.Cancel();
        IDataView data = ml.Data.LoadFromEnumerable(FashionMnistFolders.List(fixture.TrainFolder).Take(64));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        var ex = Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Fit(data));
        Assert.Contains("CancellationToken", ex.Message);
    }

    [Fact]
    public void MLContext_CancelExecution_stops_training_between_steps()
    {
        var ml = new MLContext(seed: 1);
        var options = Fast();
        options.Epochs = 3;
        // ML.NET 5.0.1 keeps MLContext.CancelExecution internal (AutoML calls it); reach it as those components do.
        var cancel = typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!;
        options.MetricsCallback = _ => cancel.Invoke(ml, null);
        IDataView data = ml.Data.LoadFromEnumerable(FashionMnistFolders.List(fixture.TrainFolder).Take(64));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.LoadRawImageBytes("Image", null, "ImagePath"))
            .Append(ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        var ex = Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Fit(data));
        Assert.Contains("CancelExecution", ex.Message);
    }

    [Fact]
    public void Options_out_of_range_are_rejected_naming_the_option()
    {
        var options = Fast();
        options.Bits = 1;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.MulticlassClassification.Trainers.SDfpImageClassification(options));
        Assert.Contains("Bits", ex.Message);
    }

    private sealed class VectorRow
    {
        public string Label { get; set; } = string.Empty;

        [VectorType(256)]
        public float[] Pixels { get; set; } = Array.Empty<float>();
    }
}
