using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// What <see cref="AtomicFile"/> does around its rename so that replacing a file behaves like writing it in place:
/// refuse when a plain write would be refused (a rename needs only the folder's permission, not the file's), give the
/// new file the old one's mode and owner, and remove temporary files that writers which died left behind.
/// </summary>
internal static partial class FileReplacement
{
    /// <summary>The temporary file's name: <c>.&lt;name&gt;.&lt;pid&gt;.&lt;32 hex digits&gt;.tmp&lt;extension&gt;</c>.</summary>
    public static string TemporaryName(string fileNameWithoutExtension, string extension) =>
        $".{fileNameWithoutExtension}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp{extension}";

    /// <summary>
    /// The file a write to <paramref name="path"/> changes: a symbolic link is followed, so that the link stays and
    /// its target is replaced, as a plain write would do.
    /// </summary>
    public static string ResolveTarget(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target ? target.FullName : path;
    }

    /// <summary>Throws <see cref="UnauthorizedAccessException"/> when <paramref name="path"/> exists and may not be opened for writing.</summary>
    public static void CheckWritable(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            // Opening for writing without truncating changes nothing, and the kernel applies exactly the checks a
            // plain write gets (mode, owner, ACLs, read-only mounts, the thread's file-system uid).
            using var probe = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new UnauthorizedAccessException($"Cannot replace '{path}': this process may not write to it ({ex.Message}). Nothing was changed.", ex);
        }
    }

    /// <summary>Gives <paramref name="temp"/> the mode and, where permitted, the owner and group of <paramref name="target"/>.</summary>
    public static void CopyAttributes(string target, string temp)
    {
        if (OperatingSystem.IsWindows() || !File.Exists(target))
        {
            return;
        }

        File.SetUnixFileMode(temp, File.GetUnixFileMode(target));
        if (TryGetOwner(target, out uint uid, out uint gid) && chown(temp, uid, gid) != 0)
        {
            // Without the right to give a file away, keep at least the group (allowed for a group we belong to);
            // the owner then becomes this user, as the README's Reliability section says.
            _ = chown(temp, uint.MaxValue, gid);
        }
    }

    /// <summary>
    /// Deletes temporary files of <paramref name="fileName"/> in <paramref name="folder"/> that match
    /// <see cref="TemporaryName"/> exactly and whose writing process no longer exists.
    /// </summary>
    public static int RemoveStale(string folder, string fileName)
    {
        string stem = Path.GetFileNameWithoutExtension(fileName);
        string extension = Path.GetExtension(fileName);
        var pattern = new Regex($"^\\.{Regex.Escape(stem)}\\.(\\d+)\\.[0-9a-f]{{32}}\\.tmp{Regex.Escape(extension)}$", RegexOptions.CultureInvariant);
        int removed = 0;
        foreach (string candidate in Directory.EnumerateFiles(folder, $".{stem}.*.tmp{extension}"))
        {
            Match match = pattern.Match(Path.GetFileName(candidate));
            if (match.Success && int.TryParse(match.Groups[1].Value, out int pid) && pid != Environment.ProcessId && !ProcessExists(pid))
            {
                try
                {
                    File.Delete(candidate);
                    removed++;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Another user's leftover, or one just removed by someone else: not ours to insist on.
                }
            }
        }

        return removed;
    }

    private static bool ProcessExists(int pid) =>
        OperatingSystem.IsLinux() ? Directory.Exists($"/proc/{pid}") : ProcessAlive(pid);

    private static bool ProcessAlive(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    // struct stat of glibc: st_uid/st_gid at bytes 28/32 on x86-64 and 24/28 on arm64 (the generic layout).
    private static bool TryGetOwner(string path, out uint uid, out uint gid)
    {
        uid = gid = 0;
        int offset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 28,
            Architecture.Arm64 => 24,
            _ => -1,
        };
        if (!OperatingSystem.IsLinux() || offset < 0)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[256];
        if (stat(path, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return false;
        }

        uid = BitConverter.ToUInt32(buffer[offset..]);
        gid = BitConverter.ToUInt32(buffer[(offset + 4)..]);
        return true;
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int stat(string path, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int chown(string path, uint owner, uint group);
}
