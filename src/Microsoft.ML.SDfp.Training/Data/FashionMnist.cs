using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Data;

/// <summary>
/// Reads Fashion-MNIST (Zalando, 28×28 grey-scale, 10 classes) from its IDX files into an
/// <see cref="ImageDataset"/> of shape <c>[N, 1, 28, 28]</c>.
/// </summary>
/// <remarks>
/// <para>
/// Files: <c>train-images-idx3-ubyte.gz</c>, <c>train-labels-idx1-ubyte.gz</c> (60 000 images) and
/// <c>t10k-images-idx3-ubyte.gz</c>, <c>t10k-labels-idx1-ubyte.gz</c> (10 000 images), as installed
/// by the Debian package <c>dataset-fashion-mnist</c>. Uncompressed copies with the same names are
/// read too (a file is decompressed only when it starts with the gzip signature).
/// </para>
/// <para>
/// Pixels are normalised as <c>(x / 255 − <see cref="Mean"/>) / <see cref="Std"/></c>, using the
/// training set's statistics for both splits (so that test images see the same transform).
/// </para>
/// </remarks>
public static class FashionMnist
{
    /// <summary>Where the Debian package <c>dataset-fashion-mnist</c> installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>
    /// Mean pixel value of the 60 000 training images, after scaling to [0, 1]
    /// (computed over all 47 040 000 training pixels: 0.2860406).
    /// </summary>
    public const float Mean = 0.2860406f;

    /// <summary>
    /// Standard deviation of the training pixels after scaling to [0, 1] (population std over all
    /// training pixels: 0.3530242).
    /// </summary>
    public const float Std = 0.3530242f;

    /// <summary>Image side length in pixels.</summary>
    public const int ImageSize = 28;

    /// <summary>Number of classes.</summary>
    public const int ClassCount = 10;

    private const string InstallHint = "Install the Debian package with `apt-get install dataset-fashion-mnist` " +
        "(it puts the files in " + DefaultDirectory + "), or pass the directory that holds them.";

    private static readonly string[] Names =
    [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ];

    /// <summary>Class names in label order: 0 = "T-shirt/top" … 9 = "Ankle boot".</summary>
    public static IReadOnlyList<string> ClassNames => Names;

    /// <summary>Loads the 60 000-image training split (or its first <paramref name="limit"/> images), normalised.</summary>
    /// <param name="directory">Folder with the IDX files; null means <see cref="DefaultDirectory"/>.</param>
    /// <param name="limit">Read only the first this many images (and labels); null reads all.</param>
    /// <exception cref="FileNotFoundException">A file is missing; the message names it and how to install the data set.</exception>
    /// <exception cref="InvalidDataException">A file is corrupt, truncated or inconsistent; the message names it and the problem.</exception>
    public static ImageDataset LoadTrain(string? directory = null, int? limit = null) =>
        Load(directory, "train", limit, normalize: true);

    /// <summary>Loads the 10 000-image test split (or its first <paramref name="limit"/> images), normalised.</summary>
    /// <param name="directory">Folder with the IDX files; null means <see cref="DefaultDirectory"/>.</param>
    /// <param name="limit">Read only the first this many images (and labels); null reads all.</param>
    /// <exception cref="FileNotFoundException">A file is missing; the message names it and how to install the data set.</exception>
    /// <exception cref="InvalidDataException">A file is corrupt, truncated or inconsistent; the message names it and the problem.</exception>
    public static ImageDataset LoadTest(string? directory = null, int? limit = null) =>
        Load(directory, "t10k", limit, normalize: true);

    /// <summary>
    /// Loads one image file and its label file. With <paramref name="normalize"/> false the pixels
    /// are only scaled to [0, 1].
    /// </summary>
    /// <param name="imagesPath">IDX3 unsigned-byte image file (gzip or plain).</param>
    /// <param name="labelsPath">IDX1 unsigned-byte label file (gzip or plain).</param>
    /// <param name="limit">Read only the first this many images (and labels); null reads all.</param>
    /// <param name="normalize">Apply <c>(x/255 − Mean)/Std</c>; otherwise <c>x/255</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is below 1.</exception>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is corrupt, truncated or the two files disagree.</exception>
    public static ImageDataset LoadFiles(string imagesPath, string labelsPath, int? limit = null, bool normalize = true)
    {
        ArgumentNullException.ThrowIfNull(imagesPath);
        ArgumentNullException.ThrowIfNull(labelsPath);
        if (limit is < 1)
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "limit must be at least 1 (or null for all images).");
        RequireFile(imagesPath);
        RequireFile(labelsPath);

        var (imageDims, pixels) = IdxFile.Read(imagesPath, dimensionCount: 3, limit);
        if (imageDims[1] != ImageSize || imageDims[2] != ImageSize)
        {
            throw new InvalidDataException(
                $"{imagesPath}: images are {imageDims[1]}×{imageDims[2]}; Fashion-MNIST images are {ImageSize}×{ImageSize}.");
        }
        var (labelDims, labelBytes) = IdxFile.Read(labelsPath, dimensionCount: 1, limit);
        if (labelDims[0] != imageDims[0])
        {
            throw new InvalidDataException(
                $"{labelsPath}: holds {labelDims[0]} labels but {imagesPath} holds {imageDims[0]} images" +
                (limit is null ? "." : $" (reading at most {limit})."));
        }
        for (int i = 0; i < labelBytes.Length; i++)
        {
            if (labelBytes[i] >= ClassCount)
                throw new InvalidDataException($"{labelsPath}: label {i} is {labelBytes[i]}; labels must lie in 0..{ClassCount - 1}.");
        }

        using var scope = NewDisposeScope();
        long n = imageDims[0];
        var images = torch.tensor(pixels, [n, 1, ImageSize, ImageSize]).to_type(ScalarType.Float32).div_(255f);
        if (normalize)
            images = images.sub_(Mean).div_(Std);
        var labels = torch.tensor(labelBytes, [n]).to_type(ScalarType.Int64);
        // The dataset takes the tensors out of this scope.
        return new ImageDataset(images, labels, ClassCount, Names);
    }

    private static ImageDataset Load(string? directory, string prefix, int? limit, bool normalize)
    {
        string dir = directory ?? DefaultDirectory;
        return LoadFiles(
            Path.Combine(dir, prefix + "-images-idx3-ubyte.gz"),
            Path.Combine(dir, prefix + "-labels-idx1-ubyte.gz"),
            limit,
            normalize);
    }

    private static void RequireFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Fashion-MNIST file '{path}' does not exist. {InstallHint}", path);
    }
}
