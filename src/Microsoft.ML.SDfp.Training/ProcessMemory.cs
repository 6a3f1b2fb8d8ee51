namespace Microsoft.ML.SDfp.Training;

/// <summary>Reads the process's resident memory, to show that training memory stays flat across epochs.</summary>
/// <remarks>
/// TorchSharp tensors live in native memory that the .NET GC does not see, so
/// <see cref="GC.GetTotalMemory(bool)"/> says nothing about a leak; the resident set size does.
/// </remarks>
internal static class ProcessMemory
{
    /// <summary>
    /// Resident set size in bytes: <c>VmRSS</c> from <c>/proc/self/status</c> where that exists (Linux), else
    /// <see cref="Environment.WorkingSet"/>.
    /// </summary>
    public static long ResidentBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    continue;
                var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 2 && long.TryParse(parts[1], out var kib))
                    return kib * 1024;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return Environment.WorkingSet;
    }
}
