using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.SDfp.Runtime;

/// <summary>
/// A read-only view of the parts of a little-endian ELF64 shared object that symbol versioning
/// needs: the version requirements (<c>.gnu.version_r</c>), version definitions
/// (<c>.gnu.version_d</c>), the dynamic symbols with their version indices, and the RELA
/// relocations against them.
/// </summary>
/// <remarks>
/// Written by hand rather than shelling out to binutils because consumers' machines and CI need
/// not have binutils, and the loader must work without manual steps.
/// </remarks>
internal sealed class ElfImage
{
    private const uint ShtRela = 4;
    private const uint ShtDynamic = 6;
    private const uint ShtDynsym = 11;
    private const uint ShtGnuVerdef = 0x6ffffffd;
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;

    /// <summary>The <c>VER_FLG_WEAK</c> bit of <c>vna_flags</c>.</summary>
    public const ushort VerFlagWeak = 0x2;

    private readonly byte[] _bytes;
    private readonly List<Section> _sections = new();

    private ElfImage(byte[] bytes, string path)
    {
        _bytes = bytes;
        Path = path;
        Parse();
    }

    /// <summary>The file the image was read from, for error messages.</summary>
    public string Path { get; }

    /// <summary>The raw bytes; the patcher edits a copy of them.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Every version requirement, one per <c>Vernaux</c> entry.</summary>
    public IReadOnlyList<VersionNeed> Needs { get; private set; } = Array.Empty<VersionNeed>();

    /// <summary>The <c>DT_NEEDED</c> libraries, in order.</summary>
    public IReadOnlyList<string> NeededLibraries { get; private set; } = Array.Empty<string>();

    /// <summary>The version names this object defines (for example <c>GLIBCXX_3.4.30</c>).</summary>
    public IReadOnlyList<string> Definitions { get; private set; } = Array.Empty<string>();

    /// <summary>Reads and parses an ELF file.</summary>
    public static ElfImage Load(string path) => new(File.ReadAllBytes(path), path);

    /// <summary>Parses ELF bytes; <paramref name="path"/> only names them in errors.</summary>
    public static ElfImage Parse(byte[] bytes, string path) => new(bytes, path);

    /// <summary>
    /// Dynamic symbols whose version index is <paramref name="versionIndex"/> and that some RELA
    /// relocation refers to. A version requirement is only safe to weaken when this is empty:
    /// then the dynamic linker never has to bind a symbol of that version.
    /// </summary>
    public IReadOnlyList<string> RelocatedSymbolsOfVersion(ushort versionIndex)
    {
        var dynsym = _sections.FirstOrDefault(s => s.Type == ShtDynsym)
            ?? throw Fail("has no .dynsym section");
        var versym = _sections.FirstOrDefault(s => s.Type == ShtGnuVersym)
            ?? throw Fail("has no .gnu.version section");
        var dynstr = _sections[(int)dynsym.Link];
        var symbolCount = (int)(dynsym.Size / 24);

        var referenced = new HashSet<uint>();
        foreach (var rela in _sections.Where(s => s.Type == ShtRela && s.Link == dynsym.Index))
        {
            for (ulong off = 0; off + 24 <= rela.Size; off += 24)
            {
                var info = U64(rela.Offset + off + 8);
                var sym = (uint)(info >> 32);
                if (sym != 0)
                    referenced.Add(sym);
            }
        }

        var result = new List<string>();
        foreach (var sym in referenced.Where(s => s < symbolCount).OrderBy(s => s))
        {
            var ver = (ushort)(U16(versym.Offset + (ulong)sym * 2) & 0x7fff);
            if (ver == versionIndex)
                result.Add(CString(dynstr.Offset + U32(dynsym.Offset + (ulong)sym * 24)));
        }
        return result;
    }

    private void Parse()
    {
        if (_bytes.Length < 64 || _bytes[0] != 0x7f || _bytes[1] != (byte)'E' || _bytes[2] != (byte)'L' || _bytes[3] != (byte)'F')
            throw Fail("is not an ELF file");
        if (_bytes[4] != 2 || _bytes[5] != 1)
            throw Fail("is not a little-endian 64-bit ELF file");

        var shoff = U64(40);
        var shentsize = U16(58);
        var shnum = U16(60);
        if (shoff == 0 || shnum == 0 || shentsize < 64)
            throw Fail("has no section headers");
        for (int i = 0; i < shnum; i++)
        {
            var h = shoff + (ulong)(i * shentsize);
            var section = new Section(i, U32(h + 4), U64(h + 24), U64(h + 32), U32(h + 40), U32(h + 44));
            if (section.Type != 8 /* NOBITS */ && section.Offset + section.Size > (ulong)_bytes.Length)
                throw Fail($"is truncated (section {i} ends past the end of the file)");
            _sections.Add(section);
        }

        var needs = new List<VersionNeed>();
        foreach (var vn in _sections.Where(s => s.Type == ShtGnuVerneed))
        {
            var strtab = _sections[(int)vn.Link];
            var entry = vn.Offset;
            for (uint n = 0; n < vn.Info; n++)
            {
                var count = U16(entry + 2);
                var file = CString(strtab.Offset + U32(entry + 4));
                var aux = entry + U32(entry + 8);
                for (int a = 0; a < count; a++)
                {
                    needs.Add(new VersionNeed(file, CString(strtab.Offset + U32(aux + 8)), U16(aux + 4), U16(aux + 6), (long)aux + 4));
                    var nextAux = U32(aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                var next = U32(entry + 12);
                if (next == 0) break;
                entry += next;
            }
        }
        Needs = needs;

        var defs = new List<string>();
        foreach (var vd in _sections.Where(s => s.Type == ShtGnuVerdef))
        {
            var strtab = _sections[(int)vd.Link];
            var entry = vd.Offset;
            for (uint n = 0; n < vd.Info; n++)
            {
                var flags = U16(entry + 2);
                var aux = entry + U32(entry + 12);
                // VER_FLG_BASE names the file itself, not a version.
                if ((flags & 0x1) == 0)
                    defs.Add(CString(strtab.Offset + U32(aux)));
                var next = U32(entry + 16);
                if (next == 0) break;
                entry += next;
            }
        }
        Definitions = defs;

        var needed = new List<string>();
        foreach (var dyn in _sections.Where(s => s.Type == ShtDynamic))
        {
            var strtab = _sections[(int)dyn.Link];
            for (ulong off = 0; off + 16 <= dyn.Size; off += 16)
            {
                var tag = U64(dyn.Offset + off);
                if (tag == 0) break;
                if (tag == 1 /* DT_NEEDED */)
                    needed.Add(CString(strtab.Offset + U64(dyn.Offset + off + 8)));
            }
        }
        NeededLibraries = needed;
    }

    private InvalidDataException Fail(string what) => new($"'{Path}' {what}.");

    private ushort U16(ulong at) => BinaryPrimitives.ReadUInt16LittleEndian(Slice(at, 2));
    private uint U32(ulong at) => BinaryPrimitives.ReadUInt32LittleEndian(Slice(at, 4));
    private ulong U64(ulong at) => BinaryPrimitives.ReadUInt64LittleEndian(Slice(at, 8));

    private ReadOnlySpan<byte> Slice(ulong at, int length)
    {
        if (at + (ulong)length > (ulong)_bytes.Length)
            throw Fail($"is truncated (read at offset {at} past the end of the file)");
        return _bytes.AsSpan((int)at, length);
    }

    private string CString(ulong at)
    {
        if (at >= (ulong)_bytes.Length)
            throw Fail($"has a string offset {at} past the end of the file");
        var span = _bytes.AsSpan((int)at);
        var end = span.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? span : span[..end]);
    }

    private sealed record Section(int Index, uint Type, ulong Offset, ulong Size, uint Link, uint Info);
}

/// <summary>One symbol-version requirement of an ELF object (a <c>Vernaux</c> entry).</summary>
/// <param name="File">The library that must provide it, e.g. <c>libstdc++.so.6</c>.</param>
/// <param name="Name">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
/// <param name="Flags">The <c>vna_flags</c> field.</param>
/// <param name="Index">The version index that <c>.gnu.version</c> uses for it (<c>vna_other</c>).</param>
/// <param name="FlagsOffset">The file offset of <c>vna_flags</c>, where the patch writes.</param>
internal sealed record VersionNeed(string File, string Name, ushort Flags, ushort Index, long FlagsOffset)
{
    /// <summary>Whether the dynamic linker treats a missing provider of this version as non-fatal.</summary>
    public bool IsWeak => (Flags & ElfImage.VerFlagWeak) != 0;
}
