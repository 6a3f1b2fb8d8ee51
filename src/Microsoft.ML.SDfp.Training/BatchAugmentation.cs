using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Random crop with zero padding and random horizontal flip, applied to a whole batch of images at once.
/// </summary>
/// <remarks>
/// The whole batch costs a fixed handful of tensor operations (pad, two gathers, flip, where) whatever its size,
/// instead of a loop over images. All randomness comes from the generator passed in, so a seeded generator gives
/// the same augmentation on every run. The crop is drawn before the flip, as torchvision's CIFAR recipe does.
/// </remarks>
internal sealed class BatchAugmentation
{
    private readonly Generator _generator;

    /// <summary>Creates the augmentation.</summary>
    /// <param name="randomCrop">Pad by <paramref name="cropPadding"/> zeros on every side, then crop back to H×W at a random offset per image.</param>
    /// <param name="cropPadding">Padding in pixels; 0 makes the crop an identity.</param>
    /// <param name="horizontalFlip">Mirror each image left-right with probability 1/2.</param>
    /// <param name="generator">Source of all randomness (CPU generator).</param>
    /// <param name="paddingValue">Value of the padded border (0 = zeros).</param>
    public BatchAugmentation(bool randomCrop, int cropPadding, bool horizontalFlip, Generator generator, double paddingValue = 0)
    {
        if (!double.IsFinite(paddingValue))
            throw new ArgumentOutOfRangeException(nameof(paddingValue), paddingValue, "The padding value must be finite.");
        PaddingValue = paddingValue;
        ArgumentOutOfRangeException.ThrowIfNegative(cropPadding);
        ArgumentNullException.ThrowIfNull(generator);
        RandomCrop = randomCrop;
        CropPadding = cropPadding;
        HorizontalFlip = horizontalFlip;
        _generator = generator;
    }

    /// <summary>True when random crop is on.</summary>
    public bool RandomCrop { get; }

    /// <summary>Zero padding per side for the crop.</summary>
    public int CropPadding { get; }

    /// <summary>Value of the padded border.</summary>
    public double PaddingValue { get; }

    /// <summary>True when random horizontal flip is on.</summary>
    public bool HorizontalFlip { get; }

    /// <summary>True when <see cref="Apply"/> changes anything.</summary>
    public bool IsIdentity => !HorizontalFlip && (!RandomCrop || CropPadding == 0);

    /// <summary>Augments a batch.</summary>
    /// <param name="images">Images [N, C, H, W].</param>
    /// <returns>
    /// A new tensor [N, C, H, W], or <paramref name="images"/> itself when <see cref="IsIdentity"/> (no copy, no random draws).
    /// </returns>
    /// <exception cref="ArgumentException">The tensor is not 4-D.</exception>
    public Tensor Apply(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4)
            throw new ArgumentException($"Expected images of shape [N, C, H, W]; got [{string.Join(", ", images.shape)}].", nameof(images));
        if (IsIdentity)
            return images;

        using var scope = NewDisposeScope();
        var n = images.shape[0];
        var result = images;
        if (RandomCrop && CropPadding > 0)
            result = Crop(result, n);
        if (HorizontalFlip)
        {
            var flip = rand(n, generator: _generator).lt(0.5).view(n, 1, 1, 1);
            result = where(flip, result.flip(3), result);
        }
        return result.MoveToOuterDisposeScope();
    }

    private Tensor Crop(Tensor images, long n)
    {
        long c = images.shape[1], h = images.shape[2], w = images.shape[3], p = CropPadding;
        var padded = nn.functional.pad(images, new[] { p, p, p, p }, value: PaddingValue);
        // One offset pair per image in [0, 2p]; offset p is the original position.
        var offsetY = randint(0, 2 * p + 1, new[] { n }, dtype: ScalarType.Int64, generator: _generator);
        var offsetX = randint(0, 2 * p + 1, new[] { n }, dtype: ScalarType.Int64, generator: _generator);
        var rows = offsetY.view(n, 1) + arange(h, dtype: ScalarType.Int64).view(1, h);   // [N, H]
        var cols = offsetX.view(n, 1) + arange(w, dtype: ScalarType.Int64).view(1, w);   // [N, W]
        var rowIndex = rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * p);
        var band = padded.gather(2, rowIndex);                                             // [N, C, H, W+2p]
        var colIndex = cols.view(n, 1, 1, w).expand(n, c, h, w);
        return band.gather(3, colIndex);                                                   // [N, C, H, W]
    }
}
