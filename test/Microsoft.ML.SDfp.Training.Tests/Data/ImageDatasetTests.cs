using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Data;

public sealed class ImageDatasetTests
{
    public ImageDatasetTests() => TorchSharpRuntime.EnsureLoaded();

    [Fact]
    public void Slice_is_a_view_of_the_requested_range()
    {
        using var data = new ImageDataset(torch.arange(6 * 2 * 4 * 4, dtype: ScalarType.Float32).reshape(6, 2, 4, 4),
            torch.tensor(new long[] { 0, 1, 2, 0, 1, 2 }), classCount: 3);

        using var slice = data.Slice(2, 3);

        Assert.Equal(3, slice.Count);
        Assert.Equal(new long[] { 2, 0, 1 }, slice.Labels.data<long>().ToArray());
        Assert.Equal(data.Images[2].sum().ToSingle(), slice.Images[0].sum().ToSingle());
        // A view: writing through the slice changes the parent.
        slice.Images[0].fill_(-1f);
        Assert.Equal(-1f, data.Images[2].max().ToSingle());
        Assert.Equal((2L, 4L, 4L), (slice.Channels, slice.Height, slice.Width));
    }

    [Fact]
    public void Dataset_survives_the_dispose_scope_it_was_built_in()
    {
        ImageDataset data;
        using (var scope = torch.NewDisposeScope())
        {
            data = new ImageDataset(torch.zeros(2, 1, 3, 3), torch.tensor(new long[] { 0, 1 }), classCount: 2);
        }

        using (data)
            Assert.Equal(0f, data.Images.sum().ToSingle());
    }

    [Fact]
    public void Slice_outside_the_dataset_is_rejected()
    {
        using var data = new ImageDataset(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype: ScalarType.Int64), classCount: 2);

        Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => data.Slice(2, 3)).ParamName);
        Assert.Equal("start", Assert.Throws<ArgumentOutOfRangeException>(() => data.Slice(-1, 1)).ParamName);
    }

    [Fact]
    public void Labels_outside_the_class_range_are_rejected_with_the_range_found()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            new ImageDataset(torch.zeros(2, 1, 2, 2), torch.tensor(new long[] { 0, 5 }), classCount: 3));

        Assert.Equal("labels", ex.ParamName);
        Assert.Contains("0..2", ex.Message);
        Assert.Contains("from 0 to 5", ex.Message);
    }

    [Fact]
    public void Images_must_be_four_dimensional_float32_with_one_label_each()
    {
        Assert.Contains("[N, C, H, W]", Assert.Throws<ArgumentException>(() =>
            new ImageDataset(torch.zeros(2, 4), torch.zeros(2, dtype: ScalarType.Int64), 2)).Message);
        Assert.Contains("float32", Assert.Throws<ArgumentException>(() =>
            new ImageDataset(torch.zeros(2, 1, 2, 2, dtype: ScalarType.Float64), torch.zeros(2, dtype: ScalarType.Int64), 2)).Message);
        Assert.Contains("int64", Assert.Throws<ArgumentException>(() =>
            new ImageDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype: ScalarType.Int32), 2)).Message);
        Assert.Contains("3", Assert.Throws<ArgumentException>(() =>
            new ImageDataset(torch.zeros(2, 1, 2, 2), torch.zeros(3, dtype: ScalarType.Int64), 2)).Message);
        Assert.Equal("classNames", Assert.Throws<ArgumentException>(() =>
            new ImageDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype: ScalarType.Int64), 2, ["only one"])).ParamName);
    }
}
