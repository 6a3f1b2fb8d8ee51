using Microsoft.ML.SDfp.Persistence;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML;

/// <summary>Loading S-DFP models for ONNX Runtime scoring, as extensions of <c>mlContext.Model</c>.</summary>
public static class SDfpScoringModelOperations
{
    /// <summary>
    /// Loads a model like <c>mlContext.Model.Load</c>, with every S-DFP image classifier in it scored by ONNX Runtime
    /// even where the training package (TorchSharp) is deployed. Where it is not, <c>Load</c> already does this.
    /// Like the training package's <c>LoadChecked</c>, it first reads every entry of the .zip and checks its size and
    /// CRC-32, so a damaged entry (ours or one of ML.NET's) is refused before any of it is parsed, and any failure names
    /// the file and says whether it is missing, not a model .zip, damaged (naming the entry), or written by an
    /// incompatible version of this library.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="filePath">The model .zip.</param>
    /// <param name="inputSchema">The schema the model was saved with.</param>
    /// <returns>The loaded model.</returns>
    /// <exception cref="FileNotFoundException">No file at <paramref name="filePath"/>.</exception>
    /// <exception cref="InvalidDataException">The file cannot be loaded; the message says why. When an entry is damaged,
    /// the inner exception is a <see cref="ModelFileCorruptException"/> whose <see cref="ModelFileCorruptException.Entry"/> names it.</exception>
    public static ITransformer LoadWithOnnxRuntime(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        if (!File.Exists(filePath))
        {
            throw new FileNotFoundException($"Model file '{filePath}' does not exist.", filePath);
        }

        DataViewSchema? schema = null;
        ITransformer model = ModelLoadFailure.Wrap($"'{filePath}'", () =>
        {
            ModelIntegrity.VerifyArchive(filePath);
            return SDfpImageClassifierLoader.WithOnnxRuntime(() => catalog.Load(filePath, out schema));
        });
        inputSchema = schema!;
        return model;
    }

    /// <summary>
    /// As <see cref="LoadWithOnnxRuntime(ModelOperationsCatalog, string, out DataViewSchema)"/>, from a stream; the
    /// CRC-32 pass runs when the stream can seek.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="stream">The model .zip.</param>
    /// <param name="inputSchema">The schema the model was saved with.</param>
    /// <returns>The loaded model.</returns>
    /// <exception cref="InvalidDataException">The stream cannot be loaded; the message says why. When an entry is damaged,
    /// the inner exception is a <see cref="ModelFileCorruptException"/> whose <see cref="ModelFileCorruptException.Entry"/> names it.</exception>
    public static ITransformer LoadWithOnnxRuntime(this ModelOperationsCatalog catalog, Stream stream, out DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(stream);
        DataViewSchema? schema = null;
        ITransformer model = ModelLoadFailure.Wrap("from the stream", () =>
        {
            if (stream.CanSeek)
            {
                ModelIntegrity.VerifyArchive(stream);
            }

            return SDfpImageClassifierLoader.WithOnnxRuntime(() => catalog.Load(stream, out schema));
        });
        inputSchema = schema!;
        return model;
    }
}
