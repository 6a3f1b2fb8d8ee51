using System.Buffers.Binary;

namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// Marks chosen symbol-version requirements of an ELF object as weak (<c>VER_FLG_WEAK</c>), so
/// that the dynamic linker no longer refuses to load it when the providing library is older.
/// </summary>
/// <remarks>
/// This is only sound when no relocation binds a symbol of that version: then the version is
/// named but never used, which is what GCC 13's <c>_ZSt21ios_base_library_initv</c> reference
/// in TorchSharp 0.107.0's <c>libLibTorchSharp.so</c> is. <see cref="Weaken"/> checks it and
/// refuses otherwise.
/// </remarks>
internal static class ElfVersionPatcher
{
    /// <summary>
    /// The requirements on <paramref name="providerSoname"/> that the provider's version
    /// definitions lack and that are not already weak.
    /// </summary>
    public static IReadOnlyList<VersionNeed> Unsatisfied(ElfImage image, string providerSoname, IReadOnlyCollection<string> providedVersions)
    {
        var provided = providedVersions as ISet<string> ?? new HashSet<string>(providedVersions, StringComparer.Ordinal);
        return image.Needs
            .Where(n => n.File == providerSoname && !n.IsWeak && !provided.Contains(n.Name))
            .ToList();
    }

    /// <summary>
    /// Returns a copy of the image's bytes with <paramref name="needs"/> marked weak.
    /// </summary>
    /// <exception cref="NativeLoadException">A relocation binds a symbol of one of those versions.</exception>
    public static byte[] Weaken(ElfImage image, IEnumerable<VersionNeed> needs)
    {
        var bytes = image.Bytes.ToArray();
        foreach (var need in needs)
        {
            var used = image.RelocatedSymbolsOfVersion(need.Index);
            if (used.Count > 0)
            {
                throw new NativeLoadException(
                    $"'{image.Path}' needs {need.Name} from {need.File} for symbols that are bound at run time " +
                    $"({string.Join(", ", used.Take(5))}{(used.Count > 5 ? ", ..." : "")}), so that requirement cannot be made weak. " +
                    $"Install a {need.File} that provides {need.Name} (for GLIBCXX_3.4.32, libstdc++ from GCC 13 or newer), " +
                    "or point LD_LIBRARY_PATH at one.");
            }
            var span = bytes.AsSpan((int)need.FlagsOffset, 2);
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(span);
            BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(flags | ElfImage.VerFlagWeak));
        }
        return bytes;
    }
}
