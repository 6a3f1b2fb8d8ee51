using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Data;

/// <summary>
/// An in-memory labelled image set: images <c>[N, C, H, W]</c> float32 (already normalised) and
/// labels <c>[N]</c> int64 in <c>0 .. ClassCount-1</c>.
/// </summary>
/// <remarks>
/// The dataset owns its two tensors: the constructor detaches them from any enclosing
/// <see cref="DisposeScope"/> (a dataset usually outlives the scope it was built in, e.g. a
/// training step's), and <see cref="Dispose"/> frees them. <see cref="Slice"/> returns views that
/// share storage with this dataset, so no pixels are copied.
/// </remarks>
public sealed class ImageDataset : IDisposable
{
    private bool _disposed;

    /// <summary>Wraps <paramref name="images"/> and <paramref name="labels"/> and takes ownership of both.</summary>
    /// <param name="images">Float32 tensor <c>[N, C, H, W]</c>, already normalised.</param>
    /// <param name="labels">Int64 tensor <c>[N]</c> with values in <c>0 .. classCount-1</c>.</param>
    /// <param name="classCount">Number of classes (at least 1).</param>
    /// <param name="classNames">Optional display names, one per class.</param>
    /// <exception cref="ArgumentException">Shapes, dtypes, label range or class names are inconsistent; the message names the argument and value.</exception>
    public ImageDataset(Tensor images, Tensor labels, int classCount, IReadOnlyList<string>? classNames = null)
        : this(images, labels, classCount, classNames, validateLabels: true)
    {
    }

    private ImageDataset(Tensor images, Tensor labels, int classCount, IReadOnlyList<string>? classNames, bool validateLabels)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.dim() != 4)
            throw new ArgumentException($"images must be [N, C, H, W]; got shape [{string.Join(", ", images.shape)}].", nameof(images));
        if (images.dtype != ScalarType.Float32)
            throw new ArgumentException($"images must be float32; got {images.dtype}.", nameof(images));
        if (labels.dim() != 1)
            throw new ArgumentException($"labels must be [N]; got shape [{string.Join(", ", labels.shape)}].", nameof(labels));
        if (labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"labels must be int64; got {labels.dtype}.", nameof(labels));
        if (images.shape[0] != labels.shape[0])
            throw new ArgumentException($"images hold {images.shape[0]} samples but labels hold {labels.shape[0]}.", nameof(labels));
        if (classCount < 1)
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "classCount must be at least 1.");
        if (classNames is not null && classNames.Count != classCount)
            throw new ArgumentException($"classNames has {classNames.Count} entries but classCount is {classCount}.", nameof(classNames));
        if (validateLabels && labels.shape[0] > 0)
        {
            long min = labels.min().ToInt64();
            long max = labels.max().ToInt64();
            if (min < 0 || max >= classCount)
                throw new ArgumentException(
                    $"labels must lie in 0..{classCount - 1}; found values from {min} to {max}.", nameof(labels));
        }

        Images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        ClassCount = classCount;
        ClassNames = classNames;
    }

    /// <summary>Images <c>[N, C, H, W]</c>, float32.</summary>
    public Tensor Images { get; }

    /// <summary>Labels <c>[N]</c>, int64 in <c>0 .. ClassCount-1</c>.</summary>
    public Tensor Labels { get; }

    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }

    /// <summary>Display names of the classes, or null when the source has none.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>Number of samples N.</summary>
    public long Count => Images.shape[0];

    /// <summary>Channels per image (C).</summary>
    public long Channels => Images.shape[1];

    /// <summary>Image height in pixels (H).</summary>
    public long Height => Images.shape[2];

    /// <summary>Image width in pixels (W).</summary>
    public long Width => Images.shape[3];

    /// <summary>
    /// Samples <c>start .. start+count-1</c> as a new dataset whose tensors are views of this one's
    /// (no copy). The slice must be disposed like any dataset; that frees only its views.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range does not lie inside <c>0 .. Count</c>.</exception>
    public ImageDataset Slice(long start, long count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || start > Count)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"start must lie in 0..{Count}.");
        if (count < 0 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"count must lie in 0..{Count - start} for start {start}.");
        // Labels were range-checked when this dataset was built, so a view needs no second pass.
        return new ImageDataset(
            Images.narrow(0, start, count),
            Labels.narrow(0, start, count),
            ClassCount,
            ClassNames,
            validateLabels: false);
    }

    /// <summary>
    /// Rank <paramref name="rank"/>'s shard for distributed training over <paramref name="ranks"/> processes: the samples i
    /// with i mod ranks = rank, copied into a new dataset. Shards differ in size by at most one sample.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">rank is not in 0..ranks-1.</exception>
    public ImageDataset Shard(int rank, int ranks)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfLessThan(ranks, 1);
        if (rank < 0 || rank >= ranks)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"rank must lie in 0..{ranks - 1}.");
        using var scope = NewDisposeScope();
        var indices = arange(rank, Count, ranks, dtype: ScalarType.Int64);
        return new ImageDataset(Images.index_select(0, indices), Labels.index_select(0, indices), ClassCount, ClassNames, validateLabels: false);
    }

    /// <summary>Frees the image and label tensors.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Images.Dispose();
        Labels.Dispose();
    }
}
