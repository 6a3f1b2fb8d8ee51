using Microsoft.ML.SDfp.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

public sealed class BatchAugmentationTests
{
    public BatchAugmentationTests() => TorchSharpRuntime.EnsureLoaded();

    private static Tensor DistinctImages(long n, long c, long h, long w) =>
        arange(n * c * h * w, dtype: ScalarType.Float32).reshape(n, c, h, w) + 1;   // every pixel distinct and non-zero

    [Fact]
    public void Switched_off_augmentation_returns_the_batch_unchanged()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(7);
        var images = DistinctImages(4, 1, 6, 6);

        Assert.Same(images, new BatchAugmentation(randomCrop: false, cropPadding: 2, horizontalFlip: false, generator).Apply(images));
        Assert.Same(images, new BatchAugmentation(randomCrop: true, cropPadding: 0, horizontalFlip: false, generator).Apply(images));
    }

    [Fact]
    public void Flip_mirrors_whole_images_exactly_and_about_half_of_them()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        var images = DistinctImages(200, 2, 5, 7);

        var output = new BatchAugmentation(randomCrop: false, cropPadding: 0, horizontalFlip: true, generator).Apply(images);

        Assert.Equal(images.shape, output.shape);
        var flipped = 0;
        for (var i = 0; i < 200; i++)
        {
            var same = output[i].equal(images[i]).all().item<bool>();
            var mirrored = output[i].equal(images[i].flip(2)).all().item<bool>();
            Assert.True(same ^ mirrored, $"image {i} must be either unchanged or an exact mirror");
            if (mirrored)
                flipped++;
        }
        Assert.InRange(flipped, 70, 130);
    }

    [Fact]
    public void Crop_shifts_each_image_by_at_most_the_padding_and_fills_with_the_padding_value()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(11);
        const int padding = 2;
        var images = DistinctImages(64, 2, 6, 5);
        var padded = nn.functional.pad(images, new long[] { padding, padding, padding, padding }, value: -3);

        var output = new BatchAugmentation(randomCrop: true, padding, horizontalFlip: false, generator, paddingValue: -3).Apply(images);

        Assert.Equal(images.shape, output.shape);
        var offsets = new HashSet<(int, int)>();
        for (var i = 0; i < 64; i++)
        {
            var match = (from dy in Enumerable.Range(0, 2 * padding + 1)
                         from dx in Enumerable.Range(0, 2 * padding + 1)
                         where output[i].equal(padded[i, .., dy..(dy + 6), dx..(dx + 5)]).all().item<bool>()
                         select (dy, dx)).ToList();
            Assert.True(match.Count == 1, $"image {i} must be exactly one window of the padded image within ±{padding} pixels");
            offsets.Add(match[0]);
        }
        Assert.True(offsets.Count > 5, "offsets must vary from image to image");
    }

    [Fact]
    public void Same_seed_gives_the_same_augmentation_and_another_seed_a_different_one()
    {
        using var scope = NewDisposeScope();
        var images = DistinctImages(32, 1, 8, 8);
        Tensor Run(ulong seed)
        {
            using var generator = new Generator(seed);
            return new BatchAugmentation(true, 2, true, generator).Apply(images);
        }

        Assert.True(Run(5).equal(Run(5)).all().item<bool>());
        Assert.False(Run(5).equal(Run(6)).all().item<bool>());
    }

    [Fact]
    public void Non_4d_input_is_rejected_with_its_shape()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1);
        var error = Assert.Throws<ArgumentException>(() => new BatchAugmentation(true, 2, true, generator).Apply(zeros(3, 28, 28)));
        Assert.Contains("[3, 28, 28]", error.Message);
    }
}
