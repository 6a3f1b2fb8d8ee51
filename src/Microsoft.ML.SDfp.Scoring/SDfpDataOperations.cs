using Microsoft.ML.Data;
using Microsoft.ML.SDfp.ImageInput;

namespace Microsoft.ML;

/// <summary>
/// Preparing image data for S-DFP classifiers, as extensions of <c>mlContext.Data</c>. In the scoring package so that
/// the TorchSharp and the ONNX Runtime routes share it.
/// </summary>
public static class SDfpDataOperations
{
    /// <summary>
    /// The rows of <paramref name="data"/> whose image decodes: rows whose image is empty (a missing file read by
    /// <c>LoadRawImageBytes</c>), not an image, or truncated are left out, and each pass over the data logs how many it
    /// skipped and the first files (<c>MLContext.Log</c>, as a warning). Put it before the classifier's pipeline to
    /// score or evaluate a data set with bad rows; without it, the first bad row stops <c>Transform</c>/<c>Evaluate</c>
    /// with an <see cref="ImageDecodeException"/> naming the file and the reason. Each kept image is decoded twice.
    /// </summary>
    /// <param name="catalog">The data operations catalog (<c>mlContext.Data</c>).</param>
    /// <param name="data">Rows with an image column (encoded bytes or <c>MLImage</c>).</param>
    /// <param name="imageColumnName">The image column. Default "Image".</param>
    /// <param name="imagePathColumnName">A text column quoted in the log, when present. Default "ImagePath".</param>
    /// <returns>The rows whose image decodes.</returns>
    public static IDataView SkipUndecodableImages(this DataOperationsCatalog catalog, IDataView data, string imageColumnName = "Image",
        string? imagePathColumnName = "ImagePath")
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrWhiteSpace(imageColumnName);
        return new UndecodableImageFilter(((IInternalCatalog)catalog).Environment, data, imageColumnName, imagePathColumnName);
    }
}
