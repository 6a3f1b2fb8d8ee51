using System.Text;

namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// Writes a file so that readers see either the old or the complete new content, never a torn one:
/// the content goes to a temporary file in the same folder, is flushed to disk, and is renamed over
/// the target (atomic on one file system). Every file this project writes goes through here. Replacing behaves like
/// writing in place (<see cref="FileReplacement"/>): refused where a plain write is, mode and owner kept, symbolic
/// links followed; the temporary file is <c>.&lt;name&gt;.&lt;pid&gt;.&lt;32 hex&gt;.tmp&lt;ext&gt;</c>, and such files left by a
/// process that no longer exists are removed by the next write of the same file.
/// </summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, stream => stream.Write(bytes));

    /// <summary>Runs <paramref name="write"/> on a stream over the temporary file, then renames it into place.</summary>
    public static void Write(string path, Action<Stream> write) => WriteVia(path, temp =>
    {
        using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        write(stream);
        stream.Flush(flushToDisk: true);
    });

    /// <summary>
    /// Runs <paramref name="write"/> on the path of the temporary file, for writers that only take a path. The
    /// temporary name keeps the target's extension, because some writers pick the format from it.
    /// </summary>
    public static void WriteVia(string path, Action<string> write)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = FileReplacement.ResolveTarget(Path.GetFullPath(path));
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        FileReplacement.CheckWritable(full);
        FileReplacement.RemoveStale(folder, Path.GetFileName(full));
        var temp = Path.Combine(folder, FileReplacement.TemporaryName(Path.GetFileNameWithoutExtension(full), Path.GetExtension(full)));
        try
        {
            write(temp);
            FileReplacement.CopyAttributes(full, temp);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }
}
