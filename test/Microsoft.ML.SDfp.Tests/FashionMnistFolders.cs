using Microsoft.ML.SDfp.Training.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Writes a slice of Fashion-MNIST as PNG files in Model Builder's layout: root/&lt;label&gt;/&lt;n&gt;.png.</summary>
internal static class FashionMnistFolders
{
    public static void Export(string root, bool train, int count)
    {
        string dir = FashionMnist.DefaultDirectory;
        string prefix = train ? "train" : "t10k";
        using ImageDataset data = FashionMnist.LoadFiles(Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz"), Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"),
            limit: count, normalize: false);
        float[] pixels = data.Images.contiguous().data<float>().ToArray();
        long[] labels = data.Labels.contiguous().data<long>().ToArray();
        int size = FashionMnist.ImageSize;
        for (int i = 0; i < labels.Length; i++)
        {
            string folder = Path.Combine(root, SafeName(FashionMnist.ClassNames[(int)labels[i]]));
            Directory.CreateDirectory(folder);
            using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Gray8, SKAlphaType.Opaque));
            var bytes = new byte[size * size];
            for (int p = 0; p < bytes.Length; p++)
            {
                bytes[p] = (byte)Math.Clamp(MathF.Round(pixels[(i * size * size) + p] * 255f), 0, 255);
            }

            System.Runtime.InteropServices.Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length);
            using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(folder, $"{i:D5}.png"), png.ToArray());
        }
    }

    /// <summary>Rows (ImagePath, Label) for every image under root, label = folder name, in a stable order.</summary>
    public static List<ImageRow> List(string root) =>
        Directory.EnumerateFiles(root, "*.*", SearchOption.AllDirectories)
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => new ImageRow { ImagePath = p, Label = Path.GetFileName(Path.GetDirectoryName(p))! })
            .ToList();

    private static string SafeName(string name) => name.Replace('/', '-');
}

/// <summary>An input row of the image-folder pipelines.</summary>
public sealed class ImageRow
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;
}

/// <summary>A prediction read back through PredictionEngine / CreateEnumerable.</summary>
public sealed class ImagePrediction
{
    public string? PredictedLabel { get; set; }

    public float[]? Score { get; set; }
}
