using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// Makes TorchSharp's native library loadable before the first <c>torch</c> call.
/// </summary>
/// <remarks>
/// <para>
/// TorchSharp 0.107.0's <c>libLibTorchSharp.so</c> requires <c>GLIBCXX_3.4.32</c> (GCC 13), while
/// Debian 12 ships GCC 12's libstdc++ (up to 3.4.30). The only symbol it wants at that version,
/// <c>_ZSt21ios_base_library_initv</c>, is never bound by a relocation, so the requirement is a
/// formality. Where the process's libstdc++ lacks a version the library asks for, this class
/// writes a copy with those requirements marked weak into a per-user cache (never into the NuGet
/// cache), preloads the libtorch libraries it depends on from their original folder, and loads
/// the copy. TorchSharp then finds it by its soname. Where nothing is missing, it does nothing.
/// </para>
/// <para>
/// This assembly's module initializer calls <see cref="EnsureLoaded"/>, so users of the SDfp
/// types need not. Code that calls <c>torch</c> before touching any SDfp type should call it
/// first. Set <c>SDFP_NATIVE_PATCH=0</c> to turn it off, and <c>SDFP_NATIVE_CACHE</c> to choose
/// the cache folder (default: <c>$XDG_CACHE_HOME/Microsoft.ML.SDfp/native</c>, else
/// <c>~/.cache/…</c>, else the temp folder).
/// </para>
/// </remarks>
public static class TorchSharpRuntime
{
    private const string LibraryFile = "libLibTorchSharp.so";
    private const string LibStdCxx = "libstdc++.so.6";
    private static readonly object Gate = new();
    private static NativeLoadReport? _report;

    /// <summary>What the last <see cref="EnsureLoaded"/> did, or null before it ran.</summary>
    public static NativeLoadReport? Report => _report;

    /// <summary>
    /// Prepares TorchSharp's native library once per process. Safe to call any number of times
    /// from any thread.
    /// </summary>
    /// <exception cref="NativeLoadException">The library cannot be made loadable; the message says why and how to fix it.</exception>
    public static NativeLoadReport EnsureLoaded()
    {
        if (_report is { } done)
            return done;
        lock (Gate)
        {
            return _report ??= Prepare();
        }
    }

    /// <summary>
    /// Like <see cref="EnsureLoaded"/>, but reports failure instead of throwing: for module
    /// initializers, where an exception would surface only as an opaque
    /// <see cref="TypeInitializationException"/>. The next <see cref="EnsureLoaded"/> call
    /// rethrows the clear message.
    /// </summary>
    /// <returns>Whether the native library is ready.</returns>
    public static bool TryEnsureLoaded()
    {
        try
        {
            EnsureLoaded();
            return true;
        }
        catch (NativeLoadException)
        {
            return false;
        }
    }

#pragma warning disable CA2255 // Loads the library as soon as anything touches this assembly; the assemblies that call torch have their own initializers that call in here.
    [ModuleInitializer]
    internal static void InitializeModule() => TryEnsureLoaded();
#pragma warning restore CA2255

    private static NativeLoadReport Prepare()
    {
        if (!OperatingSystem.IsLinux())
            return new(NativeLoadAction.NotNeeded, null, null, Array.Empty<string>(), null);

        var original = FindOriginal();
        if (original is null)
            return new(NativeLoadAction.NotFound, null, null, Array.Empty<string>(), null);

        if (Environment.GetEnvironmentVariable("SDFP_NATIVE_PATCH") == "0")
            return new(NativeLoadAction.Disabled, original, null, Array.Empty<string>(), null);

        var libstdcxx = FindLoadedLibStdCxx();
        ElfImage image;
        IReadOnlyList<string> provided;
        try
        {
            image = ElfImage.Load(original);
            provided = ElfImage.Load(libstdcxx).Definitions;
        }
        catch (InvalidDataException e)
        {
            // A damaged package file must surface with this type, which the module initializers defer.
            throw new NativeLoadException($"{e.Message} Delete the package folder from the NuGet cache and run 'dotnet restore' again.", e);
        }
        var missing = ElfVersionPatcher.Unsatisfied(image, LibStdCxx, provided);
        if (missing.Count == 0)
            return new(NativeLoadAction.NotNeeded, original, original, Array.Empty<string>(), libstdcxx);

        var patched = ElfVersionPatcher.Weaken(image, missing);
        var (path, written) = WriteToCache(original, patched);

        var folder = Path.GetDirectoryName(original)!;
        foreach (var dependency in image.NeededLibraries)
        {
            // The copy lives outside the package folder, so its $ORIGIN RUNPATH no longer finds
            // libtorch. Loading those first by full path lets the dynamic linker match them by soname.
            var candidate = Path.Combine(folder, dependency);
            if (File.Exists(candidate) && !NativeLibrary.TryLoad(candidate, out _))
                throw new NativeLoadException($"Could not load '{candidate}', which {LibraryFile} needs. Check that the libtorch-cpu-linux-x64 package restored completely (run 'dotnet restore' again).");
        }
        try
        {
            NativeLibrary.Load(path);
        }
        catch (DllNotFoundException e)
        {
            throw new NativeLoadException(
                $"The patched copy '{path}' of '{original}' (with {string.Join(", ", missing.Select(m => m.Name))} made weak) still failed to load: {e.Message} " +
                $"Install libstdc++ from GCC 13 or newer, or delete '{Path.GetDirectoryName(path)}' and retry.", e);
        }
        return new(written ? NativeLoadAction.PatchedCopyWritten : NativeLoadAction.PatchedCopyReused,
            original, path, missing.Select(m => m.Name).ToList(), libstdcxx);
    }

    /// <summary>
    /// Where the runtime would find the library for TorchSharp.dll: the folders the host lists
    /// from deps.json first, then the assembly's own folder and its runtimes/ subfolder.
    /// </summary>
    internal static string? FindOriginal()
    {
        var folders = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string listed)
            folders.AddRange(listed.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        // typeof does not run torch's static constructor, which is what would fail.
        var torchSharp = typeof(TorchSharp.torch).Assembly.Location;
        var appBase = AppContext.BaseDirectory;
        foreach (var baseDir in new[] { torchSharp is { Length: > 0 } ? Path.GetDirectoryName(torchSharp) : null, appBase })
        {
            if (baseDir is null) continue;
            folders.Add(baseDir);
            folders.Add(Path.Combine(baseDir, "runtimes", "linux-x64", "native"));
        }
        return folders.Select(f => Path.Combine(f, LibraryFile)).FirstOrDefault(File.Exists);
    }

    /// <summary>The libstdc++ that this process has (or would) load, read from /proc/self/maps.</summary>
    internal static string FindLoadedLibStdCxx()
    {
        if (!NativeLibrary.TryLoad(LibStdCxx, out _))
            throw new NativeLoadException($"{LibStdCxx} could not be loaded. Install it with 'apt-get install libstdc++6'.");
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            var slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..];
            var name = Path.GetFileName(path);
            if (name == LibStdCxx || name.StartsWith(LibStdCxx + ".", StringComparison.Ordinal))
                return path;
        }
        throw new NativeLoadException($"{LibStdCxx} was loaded but does not appear in /proc/self/maps; cannot check which GLIBCXX versions it provides.");
    }

    private static (string Path, bool Written) WriteToCache(string original, byte[] patched)
    {
        var hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(original)))[..16].ToLowerInvariant();
        var folder = Path.Combine(CacheRoot(), hash);
        var target = Path.Combine(folder, LibraryFile);
        try
        {
            if (File.Exists(target) && File.ReadAllBytes(target).AsSpan().SequenceEqual(patched))
                return (target, false);
            // Another process may be writing the same copy: each writes privately, then renames over.
            AtomicFile.WriteAllBytes(target, patched);
            return (target, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NativeLoadException(
                $"Could not write the patched copy of '{original}' to '{folder}': {e.Message} " +
                "Set SDFP_NATIVE_CACHE to a writable folder.", e);
        }
    }

    private static string CacheRoot()
    {
        if (Environment.GetEnvironmentVariable("SDFP_NATIVE_CACHE") is { Length: > 0 } explicitRoot)
            return explicitRoot;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = xdg is { Length: > 0 } ? xdg
            : home is { Length: > 0 } ? Path.Combine(home, ".cache")
            : Path.GetTempPath();
        return Path.Combine(root, "Microsoft.ML.SDfp", "native");
    }
}
