using Microsoft.ML.SDfp.Persistence;
using Microsoft.ML.SDfp.Runtime;

namespace Microsoft.ML;

/// <summary>
/// Crash-safe saving and diagnosable loading of model .zip files. ML.NET's own <c>Model.Save(model, schema, path)</c>
/// opens the path with <c>File.Create</c>, which truncates any earlier file first, and then streams the zip into it:
/// a crash or exception mid-save leaves a truncated, unreadable file where the old model was.
/// </summary>
public static class SDfpModelOperations
{
    /// <summary>
    /// Saves like <c>Model.Save</c>, but into a temporary file in the same directory, flushed to disk, then renamed
    /// over <paramref name="filePath"/>. A crash mid-save leaves the earlier file untouched (at worst a stray
    /// <c>.&lt;name&gt;.&lt;pid&gt;.&lt;32 hex digits&gt;.tmp.zip</c> next to it, which the next save of the same file removes once
    /// that process is gone); the rename is atomic on the same file system. Like a plain write, it refuses a file this
    /// process may not write (<see cref="UnauthorizedAccessException"/>, nothing changed), keeps the replaced file's mode
    /// and (where permitted) owner and group, and follows a symbolic link to the file it names.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted pipeline.</param>
    /// <param name="inputSchema">Its input schema (may be null, as for <c>Model.Save</c>).</param>
    /// <param name="filePath">Destination .zip path.</param>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string filePath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        AtomicFile.Write(filePath, stream => catalog.Save(model, inputSchema, stream));
    }

    /// <summary>
    /// Loads like <c>Model.Load(path, out schema)</c>, but first reads every entry of the .zip and checks its size and
    /// CRC-32, so a damaged entry (ours or one of ML.NET's) is reported before any of it is parsed. Any failure names the
    /// file and says whether it is missing, not a model .zip, damaged (naming the entry), or written by an incompatible
    /// version of this library. The README's "Reliability" section says what this guarantees.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="filePath">The model .zip.</param>
    /// <param name="inputSchema">The input schema saved with the model.</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="filePath"/>.</exception>
    /// <exception cref="InvalidDataException">The file cannot be loaded; the message says why.</exception>
    public static ITransformer LoadChecked(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema)
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
            return catalog.Load(filePath, out schema);
        });
        inputSchema = schema!;
        return model;
    }
}
