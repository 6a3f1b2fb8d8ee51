using System.IO.Compression;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using TorchSharp;
using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Data;

public sealed class FashionMnistTests : IDisposable
{
    private readonly string _temp;

    public FashionMnistTests()
    {
        TorchSharpRuntime.EnsureLoaded();
        _temp = Path.Combine(Path.GetTempPath(), "sdfp-fmnist-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_temp);
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public void First_hundred_training_images_are_normalised_28x28_with_labels_0_to_9()
    {
        using var train = FashionMnist.LoadTrain(limit: 100);

        Assert.Equal(100, train.Count);
        Assert.Equal(new long[] { 100, 1, 28, 28 }, train.Images.shape);
        Assert.Equal(torch.ScalarType.Float32, train.Images.dtype);
        Assert.Equal(torch.ScalarType.Int64, train.Labels.dtype);
        Assert.InRange(train.Labels.min().ToInt64(), 0, 9);
        Assert.InRange(train.Labels.max().ToInt64(), 0, 9);
        // Pixel 0 maps to -Mean/Std and 255 to (1-Mean)/Std.
        Assert.Equal(-FashionMnist.Mean / FashionMnist.Std, train.Images.min().ToSingle(), 4);
        Assert.Equal((1 - FashionMnist.Mean) / FashionMnist.Std, train.Images.max().ToSingle(), 4);
        Assert.Equal(10, train.ClassCount);
        Assert.Equal(FashionMnist.ClassNames, train.ClassNames);
    }

    [Fact]
    public void First_training_label_is_9_ankle_boot()
    {
        using var train = FashionMnist.LoadTrain(limit: 1);

        long first = train.Labels[0].ToInt64();
        Assert.Equal(9, first);
        Assert.Equal("Ankle boot", FashionMnist.ClassNames[(int)first]);
    }

    [Fact]
    public void Test_split_reads_and_without_limit_holds_ten_thousand_images()
    {
        using var test = FashionMnist.LoadTest();

        Assert.Equal(10_000, test.Count);
        // Every class appears exactly 1000 times in the standard test split.
        var counts = torch.bincount(test.Labels, minlength: 10);
        Assert.All(counts.data<long>().ToArray(), c => Assert.Equal(1000, c));
    }

    [Fact]
    public void Unnormalised_load_scales_pixels_to_unit_interval()
    {
        using var raw = FashionMnist.LoadFiles(
            Path.Combine(FashionMnist.DefaultDirectory, "train-images-idx3-ubyte.gz"),
            Path.Combine(FashionMnist.DefaultDirectory, "train-labels-idx1-ubyte.gz"),
            limit: 50,
            normalize: false);

        Assert.Equal(0f, raw.Images.min().ToSingle());
        Assert.Equal(1f, raw.Images.max().ToSingle());
    }

    [Fact]
    public void Missing_file_error_names_the_file_and_the_debian_package()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains(Path.Combine(_temp, "train-images-idx3-ubyte.gz"), ex.Message);
        Assert.Contains("apt-get install dataset-fashion-mnist", ex.Message);
    }

    [Fact]
    public void Wrong_magic_number_is_rejected_naming_the_file()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 3, magic: 0x00000801);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2, 3]);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains("train-images-idx3-ubyte.gz", ex.Message);
        Assert.Contains("magic number 0x00000801", ex.Message);
    }

    [Fact]
    public void Truncated_image_file_is_rejected_with_the_declared_and_available_counts()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 5, dataCount: 3);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2, 3, 4, 5]);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains("train-images-idx3-ubyte.gz", ex.Message);
        Assert.Contains("truncated", ex.Message);
        Assert.Contains("declares 5 items", ex.Message);
        Assert.Contains("after 3 complete items", ex.Message);
    }

    [Fact]
    public void Truncated_file_still_serves_a_limit_it_can_satisfy()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 5, dataCount: 3);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2, 3, 4, 5]);

        using var first = FashionMnist.LoadTrain(_temp, limit: 2);

        Assert.Equal(new long[] { 1, 2 }, first.Labels.data<long>().ToArray());
    }

    [Fact]
    public void Image_and_label_counts_must_agree()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 4);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2, 3]);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains("train-labels-idx1-ubyte.gz", ex.Message);
        Assert.Contains("3 labels", ex.Message);
        Assert.Contains("4 images", ex.Message);
    }

    [Fact]
    public void Images_that_are_not_28x28_are_rejected()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 2, side: 32);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2]);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains("32×32", ex.Message);
    }

    [Fact]
    public void Label_outside_0_to_9_is_rejected_with_its_index()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 3);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 12, 3]);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains("train-labels-idx1-ubyte.gz", ex.Message);
        Assert.Contains("label 1 is 12", ex.Message);
    }

    [Fact]
    public void Corrupt_gzip_stream_is_rejected_naming_the_file()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 3);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2, 3]);
        string path = Path.Combine(_temp, "train-images-idx3-ubyte.gz");
        var bytes = File.ReadAllBytes(path);
        // Keep the gzip signature but scramble the deflate payload.
        for (int i = 10; i < bytes.Length; i++)
            bytes[i] = (byte)(0xA5 ^ i);
        File.WriteAllBytes(path, bytes);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Trailing_bytes_after_the_declared_items_are_rejected()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 2, dataCount: 3);
        WriteLabels("train-labels-idx1-ubyte.gz", [1, 2]);

        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(_temp));

        Assert.Contains("more data than the 2 items", ex.Message);
    }

    [Fact]
    public void Uncompressed_idx_files_with_the_same_names_are_read_too()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 2, gzip: false, pixel: 255);
        WriteLabels("train-labels-idx1-ubyte.gz", [7, 0], gzip: false);

        using var data = FashionMnist.LoadTrain(_temp);

        Assert.Equal(new long[] { 7, 0 }, data.Labels.data<long>().ToArray());
        Assert.Equal((1 - FashionMnist.Mean) / FashionMnist.Std, data.Images.max().ToSingle(), 4);
    }

    [Fact]
    public void Limit_below_one_is_rejected_naming_the_parameter()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => FashionMnist.LoadTrain(limit: 0));

        Assert.Equal("limit", ex.ParamName);
    }

    private void WriteImages(string name, int count, int? dataCount = null, int magic = 0x00000803, int side = 28,
        bool gzip = true, byte pixel = 17)
    {
        var header = new List<byte>();
        header.AddRange(BigEndian(magic));
        header.AddRange(BigEndian(count));
        header.AddRange(BigEndian(side));
        header.AddRange(BigEndian(side));
        var data = Enumerable.Repeat(pixel, (dataCount ?? count) * side * side);
        Write(name, header.Concat(data).ToArray(), gzip);
    }

    private void WriteLabels(string name, byte[] labels, bool gzip = true)
    {
        var bytes = BigEndian(0x00000801).Concat(BigEndian(labels.Length)).Concat(labels).ToArray();
        Write(name, bytes, gzip);
    }

    private void Write(string name, byte[] bytes, bool gzip)
    {
        using var file = File.Create(Path.Combine(_temp, name));
        if (!gzip)
        {
            file.Write(bytes);
            return;
        }
        using var z = new GZipStream(file, CompressionLevel.Fastest);
        z.Write(bytes);
    }

    private static byte[] BigEndian(int value)
    {
        var b = BitConverter.GetBytes(value);
        if (BitConverter.IsLittleEndian)
            Array.Reverse(b);
        return b;
    }
}
