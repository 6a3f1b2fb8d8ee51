namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Writes result files so that a reader never sees half a file: write a temp file beside it, then rename.</summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string contents) => Write(path, temp => File.WriteAllText(temp, contents));

    /// <summary>Runs <paramref name="write"/> on a temp path in the same folder (same extension, for writers that look at it), then renames it into place.</summary>
    public static void Write(string path, Action<string> write)
    {
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileNameWithoutExtension(full)}.{Environment.ProcessId}.tmp{Path.GetExtension(full)}");
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }
}
