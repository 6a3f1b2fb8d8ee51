namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// Turns whatever a model load threw (our refusals, the zip reader's, ML.NET's) into one
/// <see cref="InvalidDataException"/> that names the file and says why, with the original as its inner exception. Both
/// checked loads use it: <c>LoadChecked</c> (training package) and <c>LoadWithOnnxRuntime</c> (this package).
/// </summary>
internal static class ModelLoadFailure
{
    /// <summary>Runs <paramref name="load"/>; any failure but running out of memory is rethrown wrapped.</summary>
    public static T Wrap<T>(string source, Func<T> load)
    {
        try
        {
            return load();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InvalidDataException($"Cannot load model {source}: {Describe(ex)}", ex);
        }
    }

    private static string Describe(Exception ex)
    {
        // Our own refusals are typed; only the zip reader's and ML.NET's errors are recognised by their text.
        if (Flatten(ex).FirstOrDefault(e => e is ModelFileCorruptException or IncompatibleModelVersionException) is { } ours)
        {
            return ours.Message;
        }

        string all = string.Join(" ", Flatten(ex).Select(e => e.Message));
        if (Flatten(ex).Any(e => e is InvalidDataException && e.Message.Contains("Central Directory", StringComparison.OrdinalIgnoreCase))
            || all.Contains("End of Central Directory", StringComparison.OrdinalIgnoreCase))
        {
            return $"the file is not a complete .zip archive (truncated, or not a zip at all). Details: {ex.Message}";
        }

        if (all.Contains("CRC", StringComparison.OrdinalIgnoreCase) || all.Contains("corrupt", StringComparison.OrdinalIgnoreCase)
            || all.Contains("block type", StringComparison.OrdinalIgnoreCase))
        {
            return $"the .zip archive is damaged. Details: {ex.Message}";
        }

        return $"it is not an ML.NET model (or it is damaged). Details: {ex.Message}";
    }

    private static IEnumerable<Exception> Flatten(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }
}
