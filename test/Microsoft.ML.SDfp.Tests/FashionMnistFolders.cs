namespace Microsoft.ML.SDfp.Tests;

/// <summary>Lists image folders in Model Builder's layout (root/&lt;label&gt;/&lt;n&gt;.png), as the sample's <c>FashionMnistExporter</c> writes them.</summary>
internal static class FashionMnistFolders
{
    /// <summary>Rows (ImagePath, Label) for every image under root, label = folder name, in a stable order.</summary>
    public static List<ImageRow> List(string root) =>
        Directory.EnumerateFiles(root, "*.*", SearchOption.AllDirectories)
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => new ImageRow { ImagePath = p, Label = Path.GetFileName(Path.GetDirectoryName(p))! })
            .ToList();
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
