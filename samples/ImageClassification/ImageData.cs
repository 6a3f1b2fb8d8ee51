namespace ImageClassification;

/// <summary>One image file and its label (the name of the folder it is in).</summary>
public sealed class ImageData
{
    public string ImagePath { get; set; } = string.Empty;

    public string Label { get; set; } = string.Empty;

    /// <summary>Every image under <paramref name="root"/>, labelled by folder name.</summary>
    public static IEnumerable<ImageData> FromFolder(string root) =>
        Directory.EnumerateFiles(root, "*.png", SearchOption.AllDirectories)
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => new ImageData { ImagePath = p, Label = Path.GetFileName(Path.GetDirectoryName(p))! });
}
