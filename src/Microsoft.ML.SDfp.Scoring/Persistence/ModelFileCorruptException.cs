namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// A model .zip fails an integrity check: a checksum does not match, or a decoded value is outside what the
/// architecture allows. <see cref="Entry"/> names the damaged part of the archive. Both scoring routes raise it, as they
/// share the reader. Plain <c>Model.Load</c> throws it (from ML.NET's loader, possibly as an inner exception); the checked
/// loads, <c>LoadWithOnnxRuntime</c> and the training package's <c>LoadChecked</c>, report it as the inner exception
/// of an <see cref="InvalidDataException"/> that names the file.
/// </summary>
public sealed class ModelFileCorruptException : IOException
{
    /// <summary>Creates the exception for <paramref name="entry"/> with the reason <paramref name="reason"/>.</summary>
    public ModelFileCorruptException(string entry, string reason, Exception? inner = null)
        : base($"The model file is damaged: entry '{entry}' {reason}", inner)
    {
        Entry = entry;
    }

    /// <summary>The archive entry (e.g. <c>TransformerChain/Transform_002/Model.key</c>) that failed its check.</summary>
    public string Entry { get; }
}
