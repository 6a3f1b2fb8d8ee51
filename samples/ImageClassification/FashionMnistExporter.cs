using Microsoft.ML.SDfp.Training.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace ImageClassification;

/// <summary>Writes Fashion-MNIST (from the Debian package) as PNG files in Model Builder's layout: root/&lt;label&gt;/&lt;n&gt;.png.</summary>
internal static class FashionMnistExporter
{
    /// <summary>
    /// Exports the split into <paramref name="root"/> unless it is already there. Writes into a temporary sibling
    /// folder and renames it at the end, so an interrupted export never leaves a half-filled folder behind.
    /// </summary>
    public static void ExportIfMissing(string root, bool train, int? limit)
    {
        if (Directory.Exists(root))
        {
            return;
        }

        string temp = root + ".partial-" + Guid.NewGuid().ToString("N");
        string dir = FashionMnist.DefaultDirectory;
        string prefix = train ? "train" : "t10k";
        using ImageDataset data = FashionMnist.LoadFiles(Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz"),
            Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"), limit, normalize: false);
        float[] pixels = data.Images.contiguous().data<float>().ToArray();
        long[] labels = data.Labels.contiguous().data<long>().ToArray();
        int size = FashionMnist.ImageSize;
        var bytes = new byte[size * size];
        for (int i = 0; i < labels.Length; i++)
        {
            string folder = Path.Combine(temp, FashionMnist.ClassNames[(int)labels[i]].Replace('/', '-'));
            Directory.CreateDirectory(folder);
            using var bitmap = new SKBitmap(new SKImageInfo(size, size, SKColorType.Gray8, SKAlphaType.Opaque));
            for (int p = 0; p < bytes.Length; p++)
            {
                bytes[p] = (byte)Math.Clamp(MathF.Round(pixels[(i * size * size) + p] * 255f), 0, 255);
            }

            System.Runtime.InteropServices.Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length);
            using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(folder, $"{i:D5}.png"), png.ToArray());
        }

        Directory.Move(temp, root);
    }
}
